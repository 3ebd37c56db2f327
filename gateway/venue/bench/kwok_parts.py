"""What a venue's writer and submitters say of their health, said for them on a kwok
control plane, where pods go Running and Ready without running anything.

The operator holds a venue Ready only while its writer says it persists and its
submitters say they reach every engine partition (venue.contract.health). On kwok nothing
runs to say it, so the operator's tests and `venue bench operator` say it on their
behalf, as healthy parts would, into the venues' (real, external) Redis; and stop, or
say otherwise, to see the operator react.
"""

from __future__ import annotations

import json
import threading

from redis import Redis
from redis.exceptions import RedisError

from venue.contract.health import HEARTBEAT_S, engine_field, now_ms, writer_field
from venue.contract.keys import Keys


class KwokParts:
    """Says every HEARTBEAT_S, for each venue, what a healthy writer and one submitter
    per partition would, until stopped; `writer_stalled_s` makes the writer say that
    persistence has not moved for that long."""

    def __init__(self, redis_url: str, venues: dict[str, int]) -> None:
        self.redis = Redis.from_url(redis_url)
        self.venues = dict(venues)  # name -> partitions
        self.writer_stalled_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kwok-parts", daemon=True)

    def start(self) -> KwokParts:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.redis.close()

    def say_once(self) -> None:
        at = now_ms()
        for name, partitions in list(self.venues.items()):
            said = {writer_field("kwok"): {"at": at, "ok": True, "detail": "",
                                           "stalledS": self.writer_stalled_s}}
            said |= {engine_field(p, "kwok"): {"at": at, "ok": True, "detail": ""}
                     for p in range(partitions)}
            self.redis.hset(Keys(name).health,
                            mapping={field: json.dumps(value) for field, value in said.items()})

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.say_once()
            except (RedisError, OSError):
                pass  # Redis away for a moment: the next beat says it
            self._stop.wait(HEARTBEAT_S)
