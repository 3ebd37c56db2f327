"""Messages a part cannot process, set aside so that it goes on with the rest.

One Redis stream per venue (Keys.dead_letters). Each entry is one message: the part
that set it aside, why (a word, and the error's text), where it came from (stream and
entry id, and for an engine event its partition and sequence), when, and its bytes.
Each one is logged at ERROR and counted (venue_dead_letters); the stream keeps the
last MAX_LEN of them, and its count of entries ever added (XINFO STREAM entries-added)
is the venue's total, which `venue bench` and the operator's status report.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from venue.metrics import DEAD_LETTERS
from venue.contract.keys import Keys

log = logging.getLogger("venue.dead_letters")

MAX_LEN = 100_000  # about; trimmed approximately

# Why a message was set aside.
UNDECODABLE = "undecodable"  # its bytes do not parse
UNKNOWN_VALUE = "unknown_value"  # an enum value or text this part cannot store
UNSTORABLE = "unstorable"  # Postgres refused it (a data or constraint error)
MALFORMED_ENTRY = "malformed_entry"  # a stream entry without the fields it must have


class DeadLetter(NamedTuple):
    part: str  # writer, submitter
    reason: str
    error: str
    data: bytes
    source: str = ""  # the stream it was read from ("" for an engine replay)
    entry: str = ""  # its entry id there
    partition: int | None = None
    sequence: int | None = None

    def fields(self) -> dict[str, str | bytes]:
        out: dict[str, str | bytes] = {
            "part": self.part, "reason": self.reason, "error": self.error,
            "source": self.source, "entry": self.entry,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"), "data": self.data}
        if self.partition is not None:
            out["partition"] = str(self.partition)
        if self.sequence is not None:
            out["sequence"] = str(self.sequence)
        return out

    def __str__(self) -> str:
        where = f"{self.source or 'replay'} entry {self.entry or '-'}"
        if self.sequence is not None:
            where += f", partition {self.partition} sequence {self.sequence}"
        return f"{self.reason} ({where}): {self.error}"


def set_aside(pipe, keys: Keys, letters: list[DeadLetter]) -> None:
    """Queue `letters` on `pipe` (a pipeline), say so loudly and count them."""
    for letter in letters:
        log.error("%s set a message aside in %s: %s", letter.part, keys.dead_letters, letter)
        DEAD_LETTERS.labels(part=letter.part, reason=letter.reason).inc()
        pipe.xadd(keys.dead_letters, letter.fields(), maxlen=MAX_LEN, approximate=True)


async def dead_letter_count(redis: Redis, keys: Keys) -> int:
    """How many messages the venue has ever set aside."""
    try:
        return count_of(await redis.xinfo_stream(keys.dead_letters))
    except ResponseError:  # no such stream: none yet
        return 0


def count_of(info: dict) -> int:
    """The count of XINFO STREAM of the dead-letter stream (entries ever added)."""
    return int(info["entries-added"])
