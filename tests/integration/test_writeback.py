"""A local Postgres's files are written back as they change, not 30 s later all at once:
what the writeback pacer leaves dirty in the page cache, read from the kernel's own page
flags."""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from venue.local.servers import PostgresServer
from venue.local.writeback import WritebackPacer

PAGE = mmap.PAGESIZE
KPF_DIRTY = 1 << 4  # <linux/kernel-page-flags.h>
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)


def dirty_pages(path: Path) -> int:
    """How many of the file's pages are dirty in the page cache: each page mapped and
    read (which dirties nothing), its frame from /proc/self/pagemap, its flags from
    /proc/kpageflags. Skips the test when this process may not see page frames."""
    size = path.stat().st_size
    pages = size // PAGE
    if pages == 0:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            for page in range(pages):
                ctypes.string_at(address + page * PAGE, 1)
            with open("/proc/self/pagemap", "rb") as pagemap:
                pagemap.seek(address // PAGE * 8)
                entries = struct.unpack(f"{pages}Q", pagemap.read(8 * pages))
            frames = [entry & PFN_MASK for entry in entries if entry & PRESENT]
            if not any(frames):
                pytest.skip("page frames are hidden from this process (needs CAP_SYS_ADMIN)")
            dirty = 0
            with open("/proc/kpageflags", "rb") as flags:
                for frame in frames:
                    flags.seek(frame * 8)
                    dirty += bool(struct.unpack("Q", flags.read(8))[0] & KPF_DIRTY)
            return dirty
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)


def write_unsynced(path: Path, size: int) -> None:
    with open(path, "ab") as file:
        file.write(os.urandom(size))


def test_a_pass_starts_the_writeback_of_every_dirty_page_of_the_files_changed_since_the_last(
        tmp_path: Path):
    database = tmp_path / "base" / "16384"
    database.mkdir(parents=True)
    table, other = database / "16400", database / "16401"
    write_unsynced(table, 32 << 20)
    before = dirty_pages(table)
    assert before > (32 << 20) // PAGE // 2, "the kernel wrote the file back before the pass"
    time.sleep(0.05)  # the file's last change older than the slack a pass takes again
    pacer = WritebackPacer(database)

    assert pacer.pass_once() == 1
    assert dirty_pages(table) == 0

    time.sleep(0.05)
    assert pacer.pass_once() == 0  # nothing changed since
    write_unsynced(other, 4 << 20)
    assert dirty_pages(other) > 0
    assert pacer.pass_once() == 1
    assert dirty_pages(other) == 0


def test_a_pass_skips_a_directory_not_made_yet_and_what_is_not_a_file(tmp_path: Path):
    assert WritebackPacer(tmp_path / "not-yet").pass_once() == 0
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-link").symlink_to(tmp_path / "elsewhere")
    write_unsynced(tmp_path / "16400", 1 << 20)
    assert WritebackPacer(tmp_path).pass_once() == 1


@pytest.fixture
def paced_postgres():
    # Its own cluster: the session's serves each test a database of its own, and paces
    # only the one it was started for (the template).
    data_dir = Path(tempfile.mkdtemp(prefix="venue-test-paced-pg-"))
    data_dir.chmod(0o755)
    server = PostgresServer(data_dir, database="paced")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_local_postgres_has_its_tables_written_back_within_a_second_of_a_change(
        paced_postgres: PostgresServer):
    server = paced_postgres
    assert server.pacer is not None and server.pacer.alive()

    async def fill() -> str:
        connection = await asyncpg.connect(server.url())
        try:
            await connection.execute("CREATE TABLE paced (id bigint, pad text)")
            # More than shared buffers' ring for a bulk insert: Postgres itself writes
            # pages out (after extending the file with zeros), into the page cache.
            await connection.execute(
                "INSERT INTO paced SELECT n, repeat('x', 200) FROM generate_series(1, 200000) n")
            return await connection.fetchval("SELECT pg_relation_filepath('paced')")
        finally:
            await connection.close()

    relation = server.pgdata / asyncio.run(fill())
    assert relation.parent == server.pacer.directory
    deadline = time.monotonic() + 3 * server.pacer.period_s + 1
    while (dirty := dirty_pages(relation)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dirty == 0, f"{dirty} pages of {relation} still dirty"
    assert relation.stat().st_size > 32 << 20

    server.stop()
    assert not server.pacer.alive()
