"""The built images, run with podman as a user runs them: the venue image's gateway,
submitter and writer and the engine image's engine take two crossing orders to a fill in
Postgres, as uid 10001 on read-only root filesystems, against real Redis and Postgres on
the host network. `make images` builds them (warm: seconds)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from venue.accounts import create_account
from venue.contract.config import VenueConfig
from venue.contract.engine import engine_arguments
from venue.local import images
from venue.local.process import free_port

JOURNAL = Path("/var/lib/venue/journal")
CONFIG = "/etc/venue/venue.json"
COMPILERS = ("cc", "gcc", "g++", "c++", "clang", "pip", "pip3")

# A cold build of both images (when pytest runs without `make images` first) takes minutes.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="session")
def tool() -> str:
    tool = images.builder()
    images.build(tool)
    return tool


def podman(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    runner = "podman" if tool == "buildah" else tool
    return subprocess.run([runner, *args], capture_output=True, text=True, check=check,
                          env=images.tool_env(), timeout=120)


def ref(name: str) -> str:
    return f"{images.REPOSITORY}/{name}:{images.DEV_TAG}"


def test_the_venue_image_answers_venue_help(tool):
    done = podman(tool, "run", "--rm", "--read-only", ref("venue"), "venue", "--help")
    assert "gateway" in done.stdout and "submitter" in done.stdout and "writer" in done.stdout


@pytest.mark.parametrize("name", ["venue", "engine"])
def test_each_image_is_labelled_with_its_title_version_and_revision(tool, name):
    [inspected] = json.loads(podman(tool, "image", "inspect", ref(name)).stdout)
    labels = inspected["Labels"] or inspected["Config"]["Labels"]
    assert {key.removeprefix("org.opencontainers.image."): value
            for key, value in labels.items() if key.startswith("org.opencontainers")} == {
        "title": f"tradingvenue {name}", "source": images.SOURCE,
        "version": images.app_version(), "revision": images.revision()}


@pytest.mark.parametrize("name", ["venue", "engine"])
def test_the_runtime_images_hold_no_compiler_pip_or_package_lists(tool, name):
    found = podman(tool, "run", "--rm", "--read-only", "--entrypoint", "sh", ref(name), "-c",
                   f"for t in {' '.join(COMPILERS)}; do command -v $t; done; "
                   "ls /var/lib/apt/lists /var/cache/apt/archives 2>/dev/null | grep -v '^/\\|^$\\|lock\\|partial'; id -u",
                   check=False)
    assert found.stdout.split() == ["10001"], found.stdout + found.stderr


@pytest.fixture
def shared_dir():
    # Readable by the images' user (uid 10001), unlike pytest's private tmp dirs.
    path = Path(tempfile.mkdtemp(prefix="venue-images-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _accounts(database_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        return {name: (await create_account(connection, name))[1] for name in ("alice", "bob")}
    finally:
        await connection.close()


async def _filled(database_url: str, timeout: float = 60) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = await connection.fetch("SELECT * FROM trades")
            if rows:
                return rows
            await asyncio.sleep(0.2)
        return []
    finally:
        await connection.close()


def test_the_images_take_two_crossing_orders_to_a_fill_in_postgres(
        tool, redis_url, database_url, shared_dir):
    run_id = uuid.uuid4().hex[:8]
    venue = VenueConfig()
    config = shared_dir / "venue.json"
    config.write_text(venue.model_dump_json())
    config.chmod(0o644)
    journal = shared_dir / "journal"
    journal.mkdir(mode=0o777)
    journal.chmod(0o777)
    engine_port, gateway_port = free_port(), free_port()
    keys = asyncio.run(_accounts(database_url))
    names = []

    def start(name: str, *args: str) -> None:
        names.append(f"venue-test-{name}-{run_id}")
        podman(tool, "run", "-d", "--name", names[-1], "--network", "host", "--read-only",
               *args)

    env = ["-e", f"REDIS_URL={redis_url}", "-e", f"DATABASE_URL={database_url}",
           "-e", f"VENUE_CONFIG={CONFIG}", "-v", f"{config}:{CONFIG}:ro",
           "-e", f"VENUE_ENGINES=127.0.0.1:{engine_port}"]
    try:
        start("engine", "-v", f"{journal}:{JOURNAL}", ref("engine"),
              *engine_arguments(venue, 0, f"127.0.0.1:{engine_port}", JOURNAL))
        for part in ("writer", "submitter"):
            start(part, *env, "-e", f"VENUE_INSTANCE={part}", ref("venue"), "venue", part)
        start("gateway", *env, ref("venue"), "venue", "gateway",
              "--host", "127.0.0.1", "--port", str(gateway_port))
        url = f"http://127.0.0.1:{gateway_port}"
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        logs = "\n".join(podman(tool, "logs", "--tail", "20", n, check=False).stderr
                         for n in names)
        assert ready is not None and ready.status_code == 200, logs
        orders = [("alice", {"symbol": "BTC-USD", "side": "buy", "price": "30000.00",
                             "quantity": "0.5"}),
                  ("bob", {"symbol": "BTC-USD", "side": "sell", "price": "29999.50",
                           "quantity": "0.5"})]
        for account, order in orders:
            answer = httpx.post(f"{url}/v1/orders", json=order, timeout=10,
                                headers={"Authorization": f"Bearer {keys[account]}"})
            assert answer.status_code == 202, answer.text
        trades = asyncio.run(_filled(database_url))
        assert len(trades) == 1, logs
        page = httpx.get(f"{url}/", timeout=10)  # the image carries the built venue page
        assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
        for name in names:
            inspected = json.loads(podman(tool, "inspect", name).stdout)[0]
            assert inspected["State"]["Running"], name
            assert inspected["HostConfig"]["ReadonlyRootfs"] is True
            assert podman(tool, "exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        for name in names:
            podman(tool, "rm", "-f", "-t", "5", name, check=False)
