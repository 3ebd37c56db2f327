"""The market sockets' writes of one event-loop turn: one callback at the end of the turn
writes every socket that has frames, in the order they first had some, and one socket's
failure keeps no other's frames back."""

from __future__ import annotations

import asyncio

from venue.market.socket import _write_at_end_of_turn


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
