"""A multi-worker gateway's metrics directory: a gateway killed before it could remove
its own leaves it behind, and the next gateway removes it (venue.metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from venue.metrics import MULTIPROC_DIR_PREFIX, multiprocess_directory


def test_the_directories_of_gateways_gone_are_removed_and_the_running_ones_kept(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed = tmp_path / f"{MULTIPROC_DIR_PREFIX}{gone.pid}-abc"
        alive = tmp_path / f"{MULTIPROC_DIR_PREFIX}{running.pid}-def"
        # A container's gateway is pid 1 at every restart: a directory of our own pid
        # is of the gateway before us.
        before_us = tmp_path / f"{MULTIPROC_DIR_PREFIX}{os.getpid()}-ghi"
        unrelated = tmp_path / "other-directory"
        for path in (killed, alive, before_us, unrelated):
            path.mkdir()
            (path / "counter_1.db").write_bytes(b"\0" * 4096)

        ours = Path(multiprocess_directory())

        assert ours.parent == tmp_path and ours.is_dir() and not any(ours.iterdir())
        assert ours.name.startswith(f"{MULTIPROC_DIR_PREFIX}{os.getpid()}-")
        assert not killed.exists() and not before_us.exists()
        assert alive.exists() and unrelated.exists()
    finally:
        running.kill()
        running.wait()
