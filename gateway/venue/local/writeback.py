"""Keeps a local Postgres's table files from piling up dirty pages for the kernel to
write back all at once.

PostgreSQL 15 extends a table or an index by writing a page of zeros, and writes the
page's rows when it leaves shared buffers, often many seconds later. The kernel writes a
file's dirty pages back once the oldest of them is 30 s old (vm.dirty_expire_centisecs),
all of them together: under 50,000 orders/s a local venue's Postgres held 1.1 to 1.5 GB
dirty (/proc/meminfo), and every 30 s the flusher handed the disk 1.0 to 1.4 GB of the
executions and orders tables and their indexes in under 0.6 s (the writeback_single_inode
tracepoint). While that queue drains, the disk makes every fdatasync wait behind it: the engine's journal, which
an order's acknowledgement and every market-data update wait for, took 40 to 150 ms a
sync instead of 0.2 to 0.3 (a probe syncing 8 KiB a millisecond while 1.5 GB was written
back; at the highest I/O priority too, so the wait is in the device, not in the queue of
this kernel).

So a local venue asks the kernel, every PACE_S, to start writing back what each file of
its database changed since the last pass holds dirty: sync_file_range(SYNC_FILE_RANGE_WRITE)
starts the writes and waits for none of them. It makes nothing durable (Postgres's own
fsyncs do that, as before) and changes no data; the disk gets the same bytes a little at
a time. A cluster's Postgres runs on a node the venue does not tune: there the node's
vm.dirty_background_bytes does the same (README.md).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

PACE_S = 0.5
SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>

_libc = ctypes.CDLL(None, use_errno=True)
_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    _sync_file_range.restype = ctypes.c_int


def start_writeback(fd: int) -> None:
    """Starts writing back every dirty page of the file open on `fd`; raises OSError."""
    if _sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


class WritebackPacer:
    """Every `period_s`, starts the writeback of each file in `directory` (a database's,
    `base/<oid>`) changed since the pass before. One database's: each pass looks at every
    file's time of change, and a test session's Postgres holds hundreds of databases."""

    def __init__(self, directory: Path, period_s: float = PACE_S) -> None:
        self.directory = Path(directory)
        self.period_s = period_s
        self._since_ns = 0  # files changed at or after this are written back next pass
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        return _sync_file_range is not None

    def start(self) -> WritebackPacer:
        if not self.available():
            log.warning("no sync_file_range on this system: Postgres's dirty pages are "
                        "written back when the kernel chooses")
            return self
        if self.alive():
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="venue-writeback-pacer",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self.period_s):
            try:
                self.pass_once()
            except OSError as error:  # never stops Postgres, nor the venue: said once
                log.warning("the writeback pacer stopped: %s; Postgres's dirty pages are "
                            "written back when the kernel chooses", error)
                return

    def pass_once(self) -> int:
        """One pass: how many files it started the writeback of."""
        started = time.time_ns()
        # A write in the same clock tick as the last pass's start may have been missed by
        # it: files changed since a tick before are taken again.
        since, self._since_ns = self._since_ns, started - 10_000_000
        count = 0
        try:
            with os.scandir(self.directory) as entries:
                files = list(entries)
        except FileNotFoundError:
            return 0
        for entry in files:
            try:
                if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime_ns < since:
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # dropped meanwhile
            try:
                start_writeback(fd)
            finally:
                os.close(fd)
            count += 1
        return count
