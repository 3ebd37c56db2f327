"""Execution reports, live, for the WebSockets of one gateway process.

One reader task per process follows every partition's events stream (plain XREAD, no
consumer group) while at least one socket is open, and hands each report to the
sockets of its account. Per partition it passes on every sequence once and in order:
an entry it has seen (a submitter's gap fill published it again) is skipped, and a gap
(events the engine emitted that never reached the stream) is filled from the engine's
Replay before going on. A socket that asks to resume replays from the engine too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError

from venue import telemetry
from venue.api.engines import EngineChannels, EngineUnavailable
from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.entries import FIELD_BATCH, FIELD_TRACEPARENT
from venue.contract.keys import Keys

log = logging.getLogger(__name__)

_READ_COUNT = 256  # stream entries per XREAD
_BLOCK_MS = 1000
# A replay streams as fast as the engine reads its memory or journal; this bounds a
# stuck one, not a long one.
REPLAY_TIMEOUT_S = 60.0
_BATCH = FIELD_BATCH.encode()
_TRACEPARENT = FIELD_TRACEPARENT.encode()


class ReportSink(Protocol):
    """A socket that wants the reports of one account."""

    account_id: int

    def on_report(self, partition: int, event: pb.Event) -> None: ...


async def stream_ends(redis: Redis, streams: Iterable[str]) -> dict[str, bytes]:
    """The id of each stream's last entry ("0-0" when it has none): where to read on from
    so that nothing published after this returns is missed."""
    streams = list(streams)
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xrevrange(stream, count=1)
        lasts = await pipe.execute()
    return {stream: (last[0][0] if last else b"0-0") for stream, last in zip(streams, lasts)}


async def follow_streams(redis: Redis, streams: dict[str, int], positions: dict[str, bytes],
                         stop: asyncio.Event, on_entries: Callable[
                             [int, bytes, list[tuple[bytes, dict[bytes, bytes]]]],
                             Awaitable[None]]) -> None:
    """Reads `streams` (stream -> partition) after `positions` (moved as it reads) until
    `stop` is set, handing each read's entries of a stream to `on_entries`, in order;
    Redis away is waited out. (The flag as well as a cancel: a cancel that lands while a
    Redis call times out can come back as a TimeoutError, which this survives.)"""
    partitions = {stream.encode(): partition for stream, partition in streams.items()}
    while not stop.is_set():
        try:
            read = await redis.xread(positions, count=_READ_COUNT, block=_BLOCK_MS)
        except (RedisError, OSError) as error:
            log.warning("%s unreadable (%s); retrying", ", ".join(streams), error)
            await asyncio.sleep(0.5)
            continue
        for stream, entries in read or ():
            positions[stream.decode()] = entries[-1][0]
            await on_entries(partitions[stream], stream, entries)


class ReportFeed:
    def __init__(self, redis: Redis, venue: VenueConfig, engines: EngineChannels) -> None:
        self.redis = redis
        self.venue = venue
        self.engines = engines
        keys = Keys(venue.name)
        self._streams = {keys.events(p): p for p in range(venue.partitions)}
        self._sinks: dict[int, set[ReportSink]] = {}
        self._next: dict[int, int] = {}  # partition -> next sequence to pass on
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._starting = asyncio.Lock()

    async def join(self, sink: ReportSink) -> None:
        """From when this returns, `sink` gets every report of its account."""
        self._sinks.setdefault(sink.account_id, set()).add(sink)
        await self._follow_streams()

    async def _follow_streams(self) -> None:
        async with self._starting:
            if self._task is None or self._task.done():
                # Read from the streams' ends as of now, taken before returning: a report
                # published after join() returns cannot be missed.
                positions = await stream_ends(self.redis, self._streams)
                self._next.clear()
                self._stop = asyncio.Event()
                self._task = asyncio.create_task(self._follow(positions, self._stop),
                                                 name="venue-report-feed")

    def leave(self, sink: ReportSink) -> None:
        sinks = self._sinks.get(sink.account_id)
        if sinks is not None:
            sinks.discard(sink)
            if not sinks:
                del self._sinks[sink.account_id]
        if not self._sinks and self._task is not None:
            # Nobody listens: no process reads and decodes every event for nothing.
            self._stop_following()

    async def close(self) -> None:
        task = self._task
        if task is not None:
            self._stop_following()
            await asyncio.gather(task, return_exceptions=True)

    def _stop_following(self) -> None:
        # The flag as well as the cancel: a cancel that lands while a Redis call times
        # out can come back as a TimeoutError, which the loop survives.
        self._stop.set()
        self._task.cancel()
        self._task = None

    async def replay(self, partition: int, from_sequence: int) -> AsyncIterator[pb.ReportBatch]:
        """The partition's events from `from_sequence` up to the engine's latest, from the
        engine. Raises EngineUnavailable when it cannot be had."""
        call = self.engines.stub(partition).Replay(
            pb.ReplayRequest(from_sequence=from_sequence), timeout=REPLAY_TIMEOUT_S)
        try:
            async for batch in call:
                yield batch
        except grpc.aio.AioRpcError as error:
            raise EngineUnavailable(partition, f"Replay from {from_sequence}: "
                                               f"{error.code().name} {error.details()}") from None
        finally:
            call.cancel()

    async def _follow(self, positions: dict[str, bytes], stop: asyncio.Event) -> None:
        await follow_streams(self.redis, self._streams, positions, stop, self._on_entries)

    async def _on_entries(self, partition: int, stream: bytes,
                          entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            serialized = fields.get(_BATCH, b"")
            try:
                batch = pb.ReportBatch.FromString(serialized)
            except DecodeError as error:
                log.error("report feed: entry %s of %s is not a ReportBatch (%s); "
                          "skipped, its reports are filled from the engine",
                          entry_id.decode(), stream.decode(), error)
                continue
            traceparent = fields.get(_TRACEPARENT)
            if telemetry.is_sampled(traceparent):
                await self._pass_on_traced(partition, batch, traceparent, stream)
            else:
                await self._pass_on(partition, batch)

    async def _pass_on_traced(self, partition: int, batch: pb.ReportBatch, traceparent: bytes,
                              stream: bytes) -> None:
        """The WebSocket push of a traced batch's execution reports: a span in the trace
        of the submitter's batch that carried them."""
        sockets = sum(len(sinks) for sinks in self._sinks.values())
        span = telemetry.tracer().start_span(
            f"push {stream.decode()}", context=telemetry.parent_of(traceparent),
            kind=SpanKind.PRODUCER, attributes={
                "messaging.system": "websocket", "messaging.operation.type": "send",
                "messaging.operation.name": "push", "venue.ws.sockets": sockets,
                "messaging.batch.message_count": sum(
                    1 for e in batch.events if e.WhichOneof("body") == "report")})
        try:
            await self._pass_on(partition, batch)
        finally:
            span.end()

    async def _pass_on(self, partition: int, batch: pb.ReportBatch) -> None:
        events = batch.events
        if not events:
            return
        expected = self._next.get(partition)
        first = events[0].sequence
        if expected is None:
            expected = first
        elif first > expected:
            await self._fill_gap(partition, expected, first)
        for event in events:
            if event.sequence >= expected:
                self._dispatch(partition, event)
        self._next[partition] = max(expected, events[-1].sequence + 1)

    async def _fill_gap(self, partition: int, start: int, end: int) -> None:
        """Pass on the events [start, end) from the engine."""
        try:
            async with aclosing(self.replay(partition, start)) as batches:
                async for batch in batches:
                    for event in batch.events:
                        if event.sequence >= end:
                            return
                        if event.sequence >= start:
                            self._dispatch(partition, event)
        except EngineUnavailable as error:
            # The sockets miss these reports live; a client that finds an order's
            # state behind resumes with subscribe.
            log.warning("report feed: gap %d..%d of partition %d not filled: %s", start,
                        end - 1, partition, error)

    def _dispatch(self, partition: int, event: pb.Event) -> None:
        if event.WhichOneof("body") != "report":
            return
        sinks = self._sinks.get(event.report.account_id)
        if sinks:
            for sink in tuple(sinks):
                sink.on_report(partition, event)
