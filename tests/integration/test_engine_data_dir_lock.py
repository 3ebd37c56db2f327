"""One engine per data directory: a second engine started on the same journal (a pod
replaced while the old one still stops, a force-deleted StatefulSet pod) waits, without
reading the journal or listening, until the first is gone, then recovers and serves. A
stop signal while it waits ends it at once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from venue.contract.engine import engine_arguments
from venue.local.engine import engine_binary
from venue.local.process import free_port, port_open


def start_second(venue_config, data_dir: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = [str(engine_binary()), *engine_arguments(venue_config, 0, f"127.0.0.1:{port}",
                                                    data_dir)]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    return process, port


def wait_for(predicate, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_second_engine_waits_for_the_first_then_takes_over(engine, venue_config, tmp_path):
    log = tmp_path / "second.log"
    second, port = start_second(venue_config, engine.data_dir, log)
    try:
        wait_for(lambda: "is held by another engine" in log.read_text(), "the wait message")
        time.sleep(0.5)
        assert second.poll() is None and not port_open(port), log.read_text()
        assert "recovered" not in log.read_text()
        engine.child.process.send_signal(signal.SIGKILL)
        engine.child.process.wait(10)
        wait_for(lambda: port_open(port), "the second engine serving")
        text = log.read_text()
        assert "is ours now" in text and "recovered in" in text, text
    finally:
        second.terminate()
        assert second.wait(10) == 0


def test_a_stop_signal_ends_an_engine_that_waits(engine, venue_config, tmp_path):
    log = tmp_path / "waiting.log"
    waiting, port = start_second(venue_config, engine.data_dir, log)
    try:
        wait_for(lambda: "is held by another engine" in log.read_text(), "the wait message")
        started = time.monotonic()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(5) == 1
        assert time.monotonic() - started < 2
        assert "stopped by a signal while waiting" in log.read_text()
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert port_open(engine.port)  # the first engine never noticed
