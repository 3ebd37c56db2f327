"""`venue up` as a user runs it: it starts everything, stops everything, and resumes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from websockets.sync.client import connect

from venue.local.process import free_port, wait_until


@pytest.fixture
def data_dir():
    # World-searchable: when we are root, the private Postgres runs as `postgres`.
    path = Path(tempfile.mkdtemp(prefix="venue-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def descendants(pid: int) -> set[int]:
    """Every process whose ancestry reaches `pid` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        found |= children
        frontier = children
    return found


def venue_parts(pids: set[int]) -> dict[str, int]:
    """The Python parts among `pids` (`venue.cli gateway` and the like), by name."""
    parts = {}
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"venue.cli" in argv and argv.index(b"venue.cli") + 1 < len(argv):
            parts[argv[argv.index(b"venue.cli") + 1].decode()] = pid
    return parts


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def open_files(pid: int) -> tuple[str, str]:
    """The soft and hard limits of open files of `pid`."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError(f"no open files limit for {pid}")


def start_venue(data_dir: Path, port: int, **settings: str
                ) -> tuple[subprocess.Popen, str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["VENUE_DATA_DIR"] = str(data_dir)
    env |= {f"VENUE_{name.upper()}": value for name, value in settings.items()}
    # Started as a login shell starts it on most machines: 1,024 open files, soft.
    process = subprocess.Popen(["/bin/sh", "-c", 'ulimit -Sn 1024 && exec "$@"', "sh",
                                sys.executable, "-m", "venue.cli", "up", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C"):
            url = re.search(r"is up: (\S+)", "".join(lines)).group(1)
            return process, url, lines
    process.kill()
    raise AssertionError("venue up did not come up:\n" + "".join(lines))


def stop_venue(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return out


def test_venue_up_serves_stops_without_orphans_and_resumes(data_dir: Path):
    port = free_port()
    # Logs of 1 KiB, one older copy each: what the parts say at start-up is more.
    process, url, lines = start_venue(data_dir, port, log_file_bytes="1024", log_files="1")
    try:
        children = descendants(process.pid)
        assert len(children) >= 5  # redis, postgres, engine, gateway, submitter, writer
        # The writer yields the CPU to the gateway and the submitters.
        assert {part: niceness(pid) for part, pid in venue_parts(children).items()} == {
            "gateway": 0, "submitter": 0, "writer": 10}
        # Each part may open as many files as it is allowed to, not the shell's 1,024.
        for pid in venue_parts(children).values():
            soft, hard = open_files(pid)
            assert soft == hard, (soft, hard)
        key = re.search(r"account alice: key (\S+)", "".join(lines)).group(1)
        assert httpx.get(f"{url}/healthz").status_code == 200
        instruments = httpx.get(f"{url}/v1/instruments",
                                headers={"Authorization": f"Bearer {key}"}).json()
        assert "BTC-USD" in [i["symbol"] for i in instruments]
        accepted = httpx.post(f"{url}/v1/orders", headers={"Authorization": f"Bearer {key}"},
                              json={"symbol": "AAPL", "side": "buy", "price": "150.00",
                                    "quantity": "10", "clientOrderId": "resume-me"})
        assert accepted.status_code == 202, accepted.text
        order_id = accepted.json()["orderId"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = httpx.get(f"{url}/v1/orders/{order_id}",
                               headers={"Authorization": f"Bearer {key}"}).json()["status"]
            if status == "new":
                break
            time.sleep(0.05)
        assert status == "new"
        # The gateway logs each WebSocket it accepts: ten of them fill its 1 KiB log,
        # which the supervisor copies aside within half a second.
        for _ in range(10):
            with connect(url.replace("http://", "ws://") + "/v1/market"):
                pass
        wait_until(lambda: (data_dir / "logs" / "gateway.log.1").exists(),
                   "gateway.log rotated", 10)
    finally:
        out = stop_venue(process)
    assert process.returncode == 0, out
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert alive == [], f"orphans left running: {alive}"
    assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").exists()
    assert list((data_dir / "redis").rglob("*.aof*"))
    rotated = {log.name for log in data_dir.rglob("*.log.*")}
    assert not any(name.endswith(".log.2") for name in rotated), rotated  # one copy kept

    # The next start finds the same account key and the same order.
    process, url, _ = start_venue(data_dir, port)
    try:
        again = httpx.get(f"{url}/v1/orders/{order_id}",
                          headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 200 and again.json()["clientOrderId"] == "resume-me"
    finally:
        stop_venue(process)


def test_a_killed_venue_up_takes_its_parts_with_it(data_dir: Path):
    process, _, _ = start_venue(data_dir, free_port())
    children = descendants(process.pid)
    assert len(children) >= 5
    process.kill()  # SIGKILL: venue up itself cleans nothing up
    process.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
        if not alive:
            break
        time.sleep(0.2)
    assert alive == [], f"parts left running without venue up: {alive}"
