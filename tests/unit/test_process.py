"""How a local venue starts its children: no Python code between fork and exec."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from venue.contract.config import Settings, VenueConfig
from venue.local.process import (Child, Restarts, Service, free_port, kept_port, rotate_log,
                                 wait_until, with_parent_death_signal)
from venue.local.venue import LocalVenue

forks_seen: list[str] = []
os.register_at_fork(before=lambda: forks_seen.append("before"),
                    after_in_child=lambda: forks_seen.append("child"))


def test_a_child_starts_without_running_the_at_fork_handlers(tmp_path: Path):
    # A preexec_fn or Popen(user=...) makes Python fork with these handlers (and the
    # interpreter's locks); with gRPC threads alive in the test process that deadlocked.
    forks_seen.clear()
    child = Child("true", ["true"], tmp_path / "true.log").start()
    assert child.process is not None and child.process.wait(10) == 0
    assert forks_seen == []


def test_a_child_dies_with_the_process_that_started_it(tmp_path: Path):
    pid_file = tmp_path / "sleeper.pid"
    # A parent that starts a sleeper, writes its pid and exits without stopping it.
    parent = Child("parent", [
        sys.executable, "-c",
        "import sys; sys.path[:0] = sys.argv[1:2];"
        "from pathlib import Path; from venue.local.process import Child;"
        "c = Child('sleep', ['sleep', '600'], Path(sys.argv[2]) / 'sleep.log').start();"
        "Path(sys.argv[2], 'sleeper.pid').write_text(str(c.pid))",
        str(Path(__file__).parents[2] / "gateway"), str(tmp_path)], tmp_path / "parent.log")
    parent.start()
    assert parent.process is not None and parent.process.wait(30) == 0, \
        (tmp_path / "parent.log").read_text()
    sleeper = int(pid_file.read_text())

    def gone() -> bool:
        try:
            status = Path(f"/proc/{sleeper}/status").read_text()
        except FileNotFoundError:
            return True
        return "zombie" in status.lower()

    wait_until(gone, "the orphaned sleeper to get SIGTERM", timeout=10)


def test_a_child_whose_parent_died_before_its_death_signal_was_set_stops_itself(
        tmp_path: Path):
    # The race the test above can lose on a loaded host: the parent gone before setpriv
    # set the signal. Played here by naming a parent that is not the child's.
    marker = tmp_path / "ran"
    for sig, number in (("TERM", signal.SIGTERM), ("KILL", signal.SIGKILL)):
        argv = with_parent_death_signal(["touch", str(marker)], sig=sig, parent=1)
        assert subprocess.run(argv, timeout=30).returncode == -number
        assert not marker.exists()
    # Its real parent: the command runs, its arguments as given.
    argv = with_parent_death_signal(["sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "$0", ""])
    answer = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert (answer.returncode, answer.stdout) == (0, "a b|$0||")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_child_can_run_as_another_user(tmp_path: Path):
    nobody = pwd.getpwnam("nobody")
    log = tmp_path / "id.log"
    tmp_path.chmod(0o777)
    child = Child("id", ["sh", "-c", "id -u; id -g; id -G"], log, user="nobody").start()
    assert child.process is not None and child.process.wait(10) == 0
    uid, gid, groups = log.read_text().split("\n")[:3]
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert groups.split() == [str(nobody.pw_gid)]


def test_restarts_back_off_while_a_part_keeps_dying_and_forgive_a_stable_one():
    restarts = Restarts()
    delays = [restarts.died(restarts.started + 1) for _ in range(9)]
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    restarts.starting(1000.0)
    assert restarts.died(1000.0 + Restarts.STABLE_S + 1) == 0  # it ran a while: once again


def test_venue_up_restarts_a_crashing_part_later_and_later_and_says_why(tmp_path: Path):
    said: list[str] = []
    local = LocalVenue(Settings(), VenueConfig(), tmp_path, gateway_port=1, say=said.append)
    crasher = [sys.executable, "-c", "print('cannot start: no such table'); raise SystemExit(3)"]
    local.children["writer"] = Child("writer", crasher, tmp_path / "writer.log").start()
    stop = [False]
    supervising = threading.Thread(target=local.supervise, args=(stop,))
    supervising.start()
    time.sleep(5)
    stop[0] = True
    supervising.join()
    exits = [line for line in said if line.startswith("writer exited with 3")]
    # At 0 s, at once, then 1 and 2 s later: four starts in five seconds, not ten.
    assert 3 <= len(exits) <= 4, said
    assert "(3 time(s) in a row); starting it again in 2 s" in exits[2]
    assert "cannot start: no such table" in exits[0]


def test_a_childs_log_is_rotated_while_it_writes_and_only_so_many_copies_are_kept(
        tmp_path: Path):
    log = tmp_path / "gateway.log"
    # A part that logs as fast as it can, each line numbered and written whole (as
    # Python's logging writes a record), 128 bytes: no line spans two pages of the file,
    # which a copy could catch half written (copytruncate's own race, not tested here).
    writer = Child("gateway", [sys.executable, "-c",
                               "import itertools, os\nfor n in itertools.count(): "
                               "os.write(1, f'{n:08d} {\"x\" * 118}\\n'.encode())"], log).start()
    rotations = 0
    try:
        deadline = time.monotonic() + 30
        while rotations < 6 and time.monotonic() < deadline:
            rotations += rotate_log(log, 64 << 10, keep=3)
            time.sleep(0.01)
    finally:
        writer.stop()
    assert rotations == 6
    copies = sorted(p.name for p in tmp_path.iterdir())
    assert copies == ["gateway.log", "gateway.log.1", "gateway.log.2", "gateway.log.3"]
    last_numbers = []
    for name in ("gateway.log.3", "gateway.log.2", "gateway.log.1", "gateway.log"):
        text = (tmp_path / name).read_bytes()
        # The writer went on at the emptied file's new end: no hole of zeros where it
        # would have written without append mode, and every line whole.
        assert b"\0" not in text, name
        lines = text.decode().splitlines()
        assert all(len(line) == 127 and line[:8].isdigit() for line in lines), name
        numbers = [int(line[:8]) for line in lines]
        assert numbers == sorted(numbers), name  # oldest copy first
        last_numbers.append(numbers[-1])
    assert last_numbers == sorted(last_numbers)
    assert not rotate_log(log, 1 << 30, keep=3)  # under the limit: left alone


def test_a_server_run_beside_the_venue_has_its_log_rotated_with_the_parts(tmp_path: Path):
    """`venue up --tracing`'s Jaeger: started beside the venue, its log grew unrotated."""
    server = Service()
    server.child = Child("jaeger", [sys.executable, "-c", "print('x' * 2000, flush=True)"],
                         tmp_path / "jaeger.log").start()
    server.child.process.wait(10)
    venue = LocalVenue(Settings(redis_url=None, database_url=None, log_file_bytes=1024,
                                log_files=1), VenueConfig(), tmp_path / "venue",
                       say=lambda _: None)
    venue.beside.append(server)
    venue.rotate_logs()
    assert (tmp_path / "jaeger.log.1").read_text() == "x" * 2000 + "\n"
    assert (tmp_path / "jaeger.log").read_text() == ""


def test_a_port_handed_out_is_never_handed_out_again_though_nobody_bound_it() -> None:
    # The OS offers a released port again: among thousands, some would repeat.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)


def test_a_kept_port_is_the_same_at_the_next_start_while_nobody_else_has_it(
        tmp_path: Path) -> None:
    ports = tmp_path / "ports.json"
    first = kept_port(ports, "postgres")
    assert json.loads(ports.read_text()) == {"postgres": first}
    assert kept_port(ports, "postgres") == first  # the venue started again
    redis = kept_port(ports, "redis")
    assert redis != first and json.loads(ports.read_text()) == {"postgres": first,
                                                                "redis": redis}
    with socket.socket() as squatter:  # another program took it meanwhile
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        moved = kept_port(ports, "postgres")
    assert moved not in (first, redis) and json.loads(ports.read_text())["postgres"] == moved
    handed = free_port()  # to another part of this process, which has not bound it yet
    ports.write_text(json.dumps({"postgres": handed}))
    assert kept_port(ports, "postgres") != handed
    for spoiled in ("not json", "[]", "null", '{"postgres": true}', '{"postgres": 70000}',
                    '{"postgres": 80}', '{"postgres": "5432"}'):
        ports.write_text(spoiled)
        port = kept_port(ports, "postgres")
        assert type(port) is int and 1024 <= port <= 65535, (spoiled, port)  # noqa: E721
        assert json.loads(ports.read_text())["postgres"] == port
