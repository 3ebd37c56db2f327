"""The database writer: engine events from Redis into Postgres, in batches, idempotently.

Each events-stream entry is one ReportBatch. The writer reads many at once, makes them
rows (venue.writer.rows), writes each run in one transaction (venue.writer.store), then
acknowledges (XACK) and marks how far each shard is persisted (venue.writer.marks). Runs
are in flight on several connections at once, committed in order. Sequences missing
from the events stream (a submitter killed between the engine's answer and its XADD)
are replayed from the engine.

Nothing the writer reads can stop it: an event it cannot store (an enum value it does
not know, a malformed report) is set aside in the venue's dead-letter stream and the
rest of its batch is written; an entry that does not decode is set aside whole (the
engine's replay then fills its sequences); and a run Postgres refuses for its data is
written entry by entry, the entry it still refuses set aside (venue.contract.dead_letters).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque

import asyncpg
import grpc
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from opentelemetry.trace import SpanKind, Status, StatusCode

from venue import telemetry
from venue.contract import health
from venue.metrics import WRITER_LAG, WRITER_PERSISTED
from venue.contract.config import Settings, VenueConfig
from venue.contract.entries import FIELD_TRACEPARENT
from venue.contract.dead_letters import UNDECODABLE, UNSTORABLE, DeadLetter, set_aside
from venue.contract.keys import WRITERS_GROUP, Keys
from venue.contract.wire import GRPC_OPTIONS, method_path
from venue.db import partitions
from venue.db.migrate import migrate
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.queue.order_ids import utc_day
from venue.queue.persisted import PersistedMarks
from venue.writer.marks import PendingMarks
from venue.stopping import BlockingWaits
from venue.writer.progress import SequenceProgress
from venue.writer.rows import _FIELD_BATCH, PART, Rows, decode_rows, runs_of, text_of
from venue.writer.store import cannot_store, persisted_through, prepare, write_rows

log = logging.getLogger("venue.writer")

_TRACEPARENT = FIELD_TRACEPARENT.encode()
_READ_COUNT = 512  # events-stream entries (report batches) per read
# The most report-batch bytes one transaction takes (about 15,000 orders' reports): a
# read of a backlog is written as several runs in flight, so each commits (and its
# orders leave the unpersisted count the gateway's backpressure reads) within a fraction
# of a second, not after seconds of a run of hundreds of thousands.
_RUN_BYTES = 4 << 20
_INTERVAL_S = 0.010  # the shortest time from one transaction's start to the next's
_CONNECTIONS = 3  # transactions in flight at once
_BLOCK_MS = 500
# Persisted entries (of the events streams and the shards' order streams) stay this long,
# for report feeds a little behind (one further behind fills its gap from the engine's
# Replay) and for inspection, then are trimmed: Redis rewrites its append-only file from
# all it holds.
_RETAIN_MS = 10_000
# A sequence missing this long was not just late: the submitter that had it died.
_GAP_GRACE_S = 3.0
_HEAD_CHECK_S = 2.0
# How often the writer makes the coming days' partitions and lets expired days go.
_PARTITIONS_S = 3600.0
# How often the engines are told how far Postgres holds their events (Persisted), so
# they prune the journal and snapshots those events no longer need.
_PERSISTED_S = 10.0

def collect_rarely() -> None:
    """Make the cyclic garbage collector of a writer process rare. A run in flight holds
    hundreds of thousands of young objects: at Python's default threshold (700 net
    allocations) the collector ran 36 times a second and carried them through every
    generation, 0.54 s of CPU in a 20 s `venue bench writer` (0.27 µs an order; gc
    callbacks timed it). Reference counting frees them; the few cycles the writer makes
    (exceptions, tasks) wait for 100,000 net allocations."""
    gc.freeze()  # what start-up made lives as long as the process: never scanned again
    gc.set_threshold(100_000, 10, 10)


class Writer:
    def __init__(self, settings: Settings, venue: VenueConfig | None = None) -> None:
        self.settings = settings
        self.venue = venue or settings.venue()
        self.keys = Keys(self.venue.name)
        self.redis = Redis.from_url(settings.redis_url)
        self.consumer = settings.instance or "writer"
        self.streams = [self.keys.events(p) for p in range(self.venue.partitions)]
        self.written_batches = 0
        self.replayed_batches = 0
        self.progress: dict[int, SequenceProgress] = {}
        self._checked_heads = 0.0
        self._told_engines = 0.0
        self._kept_partitions = 0.0
        self.marks = PersistedMarks(self.redis, self.keys, _RETAIN_MS)
        self.pending_marks = PendingMarks({}, range(self.venue.partitions))
        # Postgres refused a run's data: the pending entries go one by one next time.
        self._one_by_one = False
        self._health_field = health.writer_field(self.consumer)
        self._reported_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        await migrate(self.settings.database_url)
        log.info("writer %s: %d events streams -> postgres", self.consumer, len(self.streams))
        try:
            await health.forget_old(self.redis, self.keys, health.WRITER)
        except RedisError:
            pass
        waits = BlockingWaits(stop)
        try:
            while not stop.is_set():
                connections: list[asyncpg.Connection] = []
                try:
                    for _ in range(_CONNECTIONS):
                        connections.append(await asyncpg.connect(self.settings.database_url))
                        await prepare(connections[-1])
                    self.resume_from(await persisted_through(connections[0]))
                    await self._keep_partitions(connections[0])
                    await self._drain(connections, waits)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                        asyncpg.InternalClientError, RedisError) as error:
                    # Nothing was acknowledged for what did not commit: it is read again.
                    # (InternalClientError: a connection left mid-operation when its
                    # server died; a new connection starts clean.)
                    if cannot_store(error):
                        log.error("postgres refused a run (%r): its entries go one by one, "
                                  "and the one refused is set aside", error)
                        self._one_by_one = True
                    else:
                        log.warning("writer interrupted (%r); resuming", error)
                    await self._report_health(ok=False, detail=repr(error), force=True)
                    await asyncio.sleep(0.5)
                finally:
                    for connection in connections:
                        if not connection.is_closed():
                            connection.terminate()
        finally:
            await self.redis.aclose()

    async def _report_health(self, ok: bool = True, detail: str = "", force: bool = False
                             ) -> None:
        """Say how the writer is (contract.health), at most every HEARTBEAT_S unless forced:
        running, and for how long persistence has not moved while events await it."""
        now = time.monotonic()
        if not force and now - self._reported_at < health.HEARTBEAT_S:
            return
        self._reported_at = now
        stalled = max((p.missing_for(now) for p in self.progress.values()), default=0.0)
        try:
            await health.report(self.redis, self.keys, self._health_field, ok, detail,
                                     stalledS=round(stalled, 1))
        except RedisError:
            pass  # Redis is away: the silence says it

    def resume_from(self, persisted: dict[int, int]) -> None:
        """Start over from how far Postgres holds each partition: what is not
        acknowledged is read again."""
        partitions = range(self.venue.partitions)
        self.progress = {p: SequenceProgress(persisted.get(p, 0)) for p in partitions}
        self.pending_marks = PendingMarks(persisted, partitions)

    async def _drain(self, connections: list[asyncpg.Connection],
                     waits: BlockingWaits) -> None:
        stop = waits.stop
        await self._ensure_groups()
        # Entries read before a crash and never acknowledged come first.
        for stream in self.streams:
            while True:
                _, claimed, _ = await self.redis.xautoclaim(
                    stream, WRITERS_GROUP, self.consumer, min_idle_time=0, count=_READ_COUNT)
                if not claimed:
                    break
                pending = await self.redis.xreadgroup(
                    WRITERS_GROUP, self.consumer, {stream: "0"}, count=_READ_COUNT)
                if not pending or not pending[0][1]:
                    break
                if self._one_by_one:
                    await self._write_one_by_one(connections[0], pending)
                else:
                    rows = await decode_rows(pending)
                    await self._write(connections[0], pending, rows, self._advance(rows))
        self._one_by_one = False
        # Runs in flight, oldest first, each on its own connection: while one commits,
        # the next is decoded and sent, so the writer's CPU and Postgres's overlap.
        # Each commits after the one before it (write_rows' `after`), so `through` and
        # the acknowledgements move in order.
        in_flight: deque[tuple[asyncio.Task, asyncpg.Connection]] = deque()
        free = list(connections)
        started = 0.0  # when the last transaction began
        try:
            while not stop.is_set():
                await self._report_health()
                # Group commit: a transaction costs the writer and Postgres about a
                # millisecond whatever it holds, so under load they begin at most every
                # _INTERVAL_S, each with what arrived meanwhile. An idle writer writes a
                # lone report at once.
                wait = started + _INTERVAL_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                read = await waits.wait(self.redis.xreadgroup(
                    WRITERS_GROUP, self.consumer, {s: ">" for s in self.streams},
                    count=_READ_COUNT, block=_BLOCK_MS))
                while in_flight and in_flight[0][0].done():
                    free.append(await self._finished(in_flight))
                if read:
                    started = time.monotonic()
                for run in runs_of(read or [], _RUN_BYTES):
                    rows = await decode_rows(run)
                    if not free:
                        free.append(await self._finished(in_flight))
                    after = in_flight[-1][0] if in_flight else None
                    connection = free.pop()
                    in_flight.append((asyncio.create_task(self._write(
                        connection, run, rows, self._advance(rows), after)), connection))
                if time.monotonic() - self._checked_heads >= _HEAD_CHECK_S or not read:
                    while in_flight:  # a replay writes on a connection of its own
                        free.append(await self._finished(in_flight))
                    await self._fill_gaps(free[0])
                    await self._tell_engines(free[0])
                    await self._keep_partitions(free[0])
            while in_flight:  # stopping: what is in flight is finished
                free.append(await self._finished(in_flight))
        finally:
            for task, _ in in_flight:
                task.cancel()
            await asyncio.gather(*(task for task, _ in in_flight), return_exceptions=True)

    async def _write_one_by_one(self, connection: asyncpg.Connection, read) -> None:
        """Write entries one transaction each; an entry Postgres refuses for its data is
        set aside whole, and its sequences count as persisted, so nothing waits on it."""
        for stream, entries in read:
            for entry in entries:
                one = [(stream, [entry])]
                rows = await decode_rows(one)
                through = self._advance(rows)
                try:
                    await self._write(connection, one, rows, through)
                except asyncpg.PostgresError as error:
                    if not cannot_store(error):
                        raise
                    refused = Rows()
                    refused.covered, refused.heads, refused.marks = (
                        rows.covered, rows.heads, rows.marks)
                    entry_id, fields = entry
                    refused.set_aside = [*rows.set_aside, DeadLetter(
                        PART, UNSTORABLE, repr(error), fields.get(_FIELD_BATCH, b""),
                        text_of(stream), text_of(entry_id))]
                    await self._write(connection, one, refused, through)

    @staticmethod
    async def _finished(in_flight: deque) -> asyncpg.Connection:
        """Wait for the oldest run in flight (raising what it raised); its connection."""
        task, connection = in_flight[0]
        await task
        in_flight.popleft()
        return connection

    def _advance(self, rows: Rows) -> dict[int, int]:
        """Record what `rows` covers; the partitions whose `through` moved."""
        before = {p: progress.through for p, progress in self.progress.items()}
        for partition, head in rows.heads.items():
            self._progress_of(partition).saw_head(head)
        for partition, first, last in rows.covered:
            self._progress_of(partition).add(first, last)
        for partition, sequence, marks in rows.marks:
            self.pending_marks.add(partition, sequence, marks)
        return {p: progress.through for p, progress in self.progress.items()
                if progress.through != before.get(p)}

    def _progress_of(self, partition: int) -> SequenceProgress:
        """A partition's progress; one the venue does not have (a corrupt batch naming
        it) is tracked apart and never moves the venue's own."""
        progress = self.progress.get(partition)
        return progress if progress is not None else SequenceProgress()

    async def _fill_gaps(self, connection: asyncpg.Connection) -> None:
        """Ask the engine again for sequences missing for longer than a submitter needs
        to publish them: what a submitter killed mid-batch never did."""
        now = time.monotonic()
        if now - self._checked_heads >= _HEAD_CHECK_S:
            self._checked_heads = now
            for partition in self.progress:
                head = await self._engine_head(partition)
                if head is not None:
                    self.progress[partition].saw_head(head)
        for partition, progress in self.progress.items():
            if progress.missing_for(now) < _GAP_GRACE_S:
                continue
            log.warning("partition %d: sequences %d..%d missing for %.1fs; replaying them "
                        "from the engine", partition, progress.through + 1, progress.head,
                        progress.missing_for(now))
            try:
                await self._replay(connection, partition, progress.through + 1, progress.head)
            except grpc.aio.AioRpcError as error:
                log.warning("replay from engine partition %d failed: %s", partition,
                            error.code())

    async def _replay(self, connection: asyncpg.Connection, partition: int, first: int,
                      last: int) -> None:
        """Sequences first..last of a partition from the engine's Replay, read as the
        bytes it sends, as the events stream's are (what cannot be stored is set aside)."""
        source = f"replay {first}..{last}"
        async with grpc.aio.insecure_channel(self.settings.engine_address(partition),
                                             options=GRPC_OPTIONS) as channel:
            replay = channel.unary_stream(_REPLAY, request_serializer=_serialize,
                                          response_deserializer=None)
            rows, batches, reached = Rows(), [], first - 1
            async for batch in replay(pb.ReplayRequest(from_sequence=first), timeout=30):
                self.replayed_batches += 1
                try:
                    rows.add_serialized(batch, entry=source)
                except ValueError as error:
                    # The engine's own answer does not decode, and nothing else holds
                    # these sequences: set aside, and counted as persisted, so the venue
                    # goes on. (The batches before it are read again: this one may have
                    # left part of itself in the rows.)
                    rows = Rows()
                    for good in batches:
                        rows.add_serialized(good, entry=source)
                    rows.covered.append((partition, reached + 1, last))
                    rows.set_aside.append(DeadLetter(
                        PART, UNDECODABLE, f"replayed sequences {reached + 1}..{last}: "
                        f"{error!r}", batch, partition=partition))
                    break
                batches.append(batch)
                if not rows.covered or rows.covered[-1][2] <= reached:
                    break  # nothing more to come
                reached = rows.covered[-1][2]
                if reached >= last:
                    break
                if len(rows.executions) >= _RUN_BYTES:
                    await self._write_replayed(connection, rows)
                    rows, batches = Rows(), []
            await self._write_replayed(connection, rows)

    async def _write_replayed(self, connection: asyncpg.Connection, rows: Rows) -> None:
        through = self._advance(rows)
        await write_rows(connection, rows, through)
        # A gap filled: the marks of batches after it may hold now.
        async with self.redis.pipeline(transaction=False) as pipe:
            set_aside(pipe, self.keys, rows.set_aside)
            self._release_closed(pipe, rows)
            await self.marks.record(pipe, self.pending_marks.now_true(through))
            await pipe.execute()

    async def _tell_engines(self, connection: asyncpg.Connection) -> None:
        """At most every _PERSISTED_S: tell each engine how far Postgres holds its events
        (what is committed, read back), so it can prune its journal. An engine that is
        away hears it next time."""
        now = time.monotonic()
        if now - self._told_engines < _PERSISTED_S:
            return
        self._told_engines = now
        for partition, through in (await persisted_through(connection)).items():
            try:
                async with grpc.aio.insecure_channel(
                        self.settings.engine_address(partition)) as channel:
                    await engine_pb2_grpc.MatchingEngineStub(channel).Persisted(
                        pb.PersistedRequest(through_sequence=through), timeout=5)
            except grpc.aio.AioRpcError as error:
                log.info("engine partition %d not told it is persisted through %d: %s",
                         partition, through, error.code().name)

    async def _keep_partitions(self, connection: asyncpg.Connection) -> None:
        """At start and then every _PARTITIONS_S: the partitions of the days to come,
        and the retention (venue.db.partitions)."""
        now = time.monotonic()
        if self._kept_partitions and now - self._kept_partitions < _PARTITIONS_S:
            return
        self._kept_partitions = now
        created, gone = await partitions.keep(connection, utc_day(),
                                              self.settings.retention_days,
                                              self.settings.retention_action)
        if created or gone:
            log.info("partitions: made %s; let go %s", created or "none", gone or "none")

    async def _engine_head(self, partition: int) -> int | None:
        try:
            async with grpc.aio.insecure_channel(
                    self.settings.engine_address(partition)) as channel:
                health = await engine_pb2_grpc.MatchingEngineStub(channel).Health(
                    pb.HealthRequest(), timeout=2)
            return health.next_sequence - 1
        except grpc.aio.AioRpcError:
            return None  # the engine is away; the events stream is all there is

    async def _write(self, connection: asyncpg.Connection, read, rows: Rows,
                     through: dict[int, int], after: asyncio.Task | None = None) -> None:
        sampled = telemetry.sampled_of(fields.get(_TRACEPARENT)
                                       for _, entries in read for _, fields in entries)
        if sampled:
            span = telemetry.start_linked(
                f"process {self.keys.prefix}:events", SpanKind.CONSUMER, sampled,
                attributes={"messaging.system": telemetry.MESSAGING_SYSTEM,
                            "messaging.operation.type": "process",
                            "messaging.operation.name": "process",
                            "messaging.destination.name": f"{self.keys.prefix}:events",
                            "messaging.batch.message_count": sum(len(e) for _, e in read),
                            "db.system.name": "postgresql"})
            try:
                await self._write_untraced(connection, read, rows, through, after)
            except BaseException as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            finally:
                span.end()
        else:
            await self._write_untraced(connection, read, rows, through, after)

    async def _write_untraced(self, connection: asyncpg.Connection, read, rows: Rows,
                              through: dict[int, int], after: asyncio.Task | None) -> None:
        await write_rows(connection, rows, through, after)
        async with self.redis.pipeline(transaction=False) as pipe:
            # Before the acknowledgement: a crash between the two sets them aside again,
            # and takes the closed orders out of their accounts' open orders again.
            set_aside(pipe, self.keys, rows.set_aside)
            self._release_closed(pipe, rows)
            # Persisted: their status is read from Postgres from now on.
            await self.marks.record(pipe, self.pending_marks.now_true(through))
            newest = 0
            for stream, entries in read:
                ids = [entry_id for entry_id, _ in entries]
                pipe.xack(stream, WRITERS_GROUP, *ids)
                ms = int(ids[-1].split(b"-")[0])
                newest = max(newest, ms)
                pipe.xtrim(stream, minid=max(0, ms - _RETAIN_MS), approximate=True)
            await pipe.execute()
        written = sum(len(entries) for _, entries in read)
        self.written_batches += written
        WRITER_PERSISTED.inc(written)
        if newest:
            WRITER_LAG.set(max(0.0, time.time() - newest / 1000))

    def _release_closed(self, pipe, rows: Rows) -> None:
        """The run's closed orders, now in Postgres, no longer count against their
        accounts' open-orders limit (the enqueue script's sets)."""
        for account_id, order_ids in rows.closed_orders().items():
            pipe.srem(self.keys.open_orders(account_id), *order_ids)

    async def _ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, WRITERS_GROUP, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise


_REPLAY = method_path("Replay")


def _serialize(message) -> bytes:
    return message.SerializeToString()
