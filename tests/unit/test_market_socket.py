"""The market sockets' writes of one event-loop turn: one callback at the end of the turn
writes every socket that has frames, in the order they first had some, and one socket's
failure keeps no other's frames back. And how many market sockets a process's file
descriptors leave room for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Iterator

import pytest

from venue import cli
from venue.api.http_protocol import open_files_share
from venue.market.socket import _write_at_end_of_turn, fitted_market_sockets


class Connection:
    def __init__(self, name: str, written: list[str], fails: bool = False) -> None:
        self.name, self.written, self.fails = name, written, fails
        self._pending = [b"frame"]

    def _flush(self) -> None:
        if self.fails:
            raise OSError("the connection broke")
        self.written.append(self.name)
        self._pending.clear()


async def test_a_turns_sockets_are_written_at_its_end_and_a_failure_stops_no_other() -> None:
    written: list[str] = []
    a, broken, c = (Connection("a", written), Connection("broken", written, fails=True),
                    Connection("c", written))
    for socket in (a, broken, c):
        _write_at_end_of_turn(socket)
    assert written == []  # nothing before the turn ends
    await asyncio.sleep(0)
    assert written == ["a", "c"]
    assert broken._pending == []  # dropped, not left to block its next turn
    _write_at_end_of_turn(c)  # the next turn has its own callback
    _write_at_end_of_turn(a)
    await asyncio.sleep(0)
    assert written == ["a", "c", "c", "a"]


@contextlib.contextmanager
def open_files(soft: int) -> Iterator[None]:
    """This process's soft limit of open files lowered to `soft` for a while."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_market_sockets_take_at_most_half_the_file_descriptors_and_say_so(
        caplog: pytest.LogCaptureFixture) -> None:
    fitted = open_files_share.__wrapped__  # (uncached)
    with open_files(1024), caplog.at_level(logging.WARNING, "venue.api.http_protocol"):
        assert fitted("market sockets", 10_000, 2) == 512
        assert "market sockets: at most 512, not 10000" in caplog.text
        assert fitted("market sockets", 300, 2) == 300
        # HTTP connections (venue.api.http_protocol) a quarter: a quarter left for the rest
        assert fitted("HTTP connections", 10_000, 4) == 256
        assert "HTTP connections: at most 256, not 10000" in caplog.text
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open_files(hard):
        assert fitted("market sockets", hard // 2, 2) == hard // 2
    assert fitted_market_sockets(1) == 1


def test_a_part_raises_its_soft_limit_of_open_files_to_the_hard_one() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open_files(1024):
        cli._raise_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
