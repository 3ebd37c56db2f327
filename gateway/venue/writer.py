"""The database writer: engine events from Redis into Postgres, in batches, idempotently.

Each events-stream entry is one ReportBatch. The writer reads many at once, COPYs their
rows into staging tables and moves them into the real ones in one transaction, then
acknowledges (XACK). Executions and trades are keyed by the engine's own numbering
(partition, sequence / trade id), and an order row only ever moves to a later sequence,
so an entry written twice (a crash between COMMIT and XACK) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from venue.config import Settings, VenueConfig
from venue.db.migrate import migrate
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.enginewire import (EXEC_TYPE_WORDS, GRPC_OPTIONS, ORDER_STATUS_WORDS,
                              ORDER_TYPE_WORDS, REJECT_REASON_WORDS, SIDE_WORDS,
                              TIME_IN_FORCE_WORDS)
from venue.progress import SequenceProgress
from venue.queue import FIELD_BATCH, WRITERS_GROUP, Keys

log = logging.getLogger("venue.writer")

_READ_COUNT = 512  # events-stream entries (report batches) per transaction
_BLOCK_MS = 500
_RETAIN_MS = 60_000
# A sequence missing this long was not just late: the submitter that had it died.
_GAP_GRACE_S = 3.0
_HEAD_CHECK_S = 2.0

_EXECUTION_COLUMNS = ("partition", "sequence", "order_id", "exec_type", "order_status",
                      "last_qty", "last_px", "cum_qty", "leaves_qty", "cum_notional",
                      "reject_reason", "trade_id", "engine_time")
_TRADE_COLUMNS = ("partition", "trade_id", "sequence", "instrument_id", "price", "quantity",
                  "buy_order_id", "sell_order_id", "aggressor_side", "engine_time")
_ORDER_COLUMNS = ("order_id", "client_order_id", "account_id", "instrument_id", "side", "type",
                  "time_in_force", "post_only", "price", "quantity", "status", "cum_qty",
                  "leaves_qty", "cum_notional", "reject_reason", "partition", "last_sequence",
                  "created_at", "updated_at")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_executions (LIKE executions) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_trades (LIKE trades) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_orders (LIKE orders) ON COMMIT DELETE ROWS;
"""

_MOVE = """
INSERT INTO executions SELECT * FROM stage_executions ON CONFLICT DO NOTHING;
INSERT INTO trades SELECT * FROM stage_trades ON CONFLICT DO NOTHING;
INSERT INTO orders SELECT * FROM stage_orders
ON CONFLICT (order_id) DO UPDATE SET
    price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
    cum_qty = EXCLUDED.cum_qty, leaves_qty = EXCLUDED.leaves_qty,
    cum_notional = EXCLUDED.cum_notional, reject_reason = EXCLUDED.reject_reason,
    last_sequence = EXCLUDED.last_sequence, updated_at = EXCLUDED.updated_at
WHERE orders.last_sequence < EXCLUDED.last_sequence;
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_PROGRESS = """
INSERT INTO partition_progress (partition, persisted_through) VALUES ($1, $2)
ON CONFLICT (partition) DO UPDATE SET persisted_through = EXCLUDED.persisted_through,
    updated_at = now()
WHERE partition_progress.persisted_through < EXCLUDED.persisted_through
"""


def _time(timestamp_ns: int) -> datetime:
    """Exact to the microsecond Postgres keeps (a float of seconds is not)."""
    return _EPOCH + timedelta(microseconds=timestamp_ns // 1000)


class Rows:
    """The table rows of a run of report batches, and the sequences they cover."""

    def __init__(self) -> None:
        self.executions: list[tuple] = []
        self.trades: list[tuple] = []
        self._orders: dict[int, tuple] = {}
        self.covered: list[tuple[int, int, int]] = []  # (partition, first, last)
        self.heads: dict[int, int] = {}  # partition -> highest sequence it has assigned

    @property
    def order_ids(self) -> list[int]:
        return list(self._orders)

    @property
    def orders(self) -> list[tuple]:
        return list(self._orders.values())

    def add(self, batch: pb.ReportBatch) -> None:
        partition = batch.partition
        if batch.events:
            self.covered.append((partition, batch.events[0].sequence,
                                 batch.events[-1].sequence))
        if batch.next_sequence:
            self.heads[partition] = max(self.heads.get(partition, 0), batch.next_sequence - 1)
        stamp, at = None, None
        for event in batch.events:
            kind = event.WhichOneof("body")
            if kind == "level":
                continue  # market data: for subscribers, not for the database
            if event.timestamp_ns != stamp:  # the events of one command share their time
                stamp = event.timestamp_ns
                at = _time(stamp)
            if kind == "report":
                self._report(partition, event.sequence, at, event.report)
            elif kind == "trade":
                t = event.trade
                self.trades.append((partition, t.trade_id, event.sequence, t.instrument_id,
                                    t.price, t.quantity, t.buy_order_id, t.sell_order_id,
                                    SIDE_WORDS[t.aggressor_side], at))

    def _report(self, partition: int, sequence: int, at: datetime,
                r: pb.ExecutionReport) -> None:
        reason = REJECT_REASON_WORDS.get(r.reject_reason)
        status = ORDER_STATUS_WORDS[r.order_status]
        self.executions.append((partition, sequence, r.order_id, EXEC_TYPE_WORDS[r.exec_type],
                                status, r.last_qty, r.last_px, r.cum_qty, r.leaves_qty,
                                r.cum_notional, reason,
                                r.trade_id if r.exec_type == pb.EXEC_TYPE_TRADE else None, at))
        known = self._orders.get(r.order_id)
        if known is not None and known[16] > sequence:
            return
        created = known[17] if known is not None else at
        self._orders[r.order_id] = (
            r.order_id, r.client_order_id, r.account_id, r.instrument_id,
            SIDE_WORDS.get(r.side, "buy"), ORDER_TYPE_WORDS.get(r.type, "limit"),
            TIME_IN_FORCE_WORDS.get(r.time_in_force, "gtc"), r.post_only, r.price, r.quantity,
            status, r.cum_qty, r.leaves_qty, r.cum_notional, reason, partition, sequence,
            created, at)


async def write_rows(connection: asyncpg.Connection, rows: Rows,
                     through: dict[int, int] | None = None) -> None:
    """COPY the rows into staging and move them into the tables, in one transaction,
    with how far each partition is now persisted without a gap (`through`)."""
    async with connection.transaction():
        if rows.executions:
            await connection.copy_records_to_table(
                "stage_executions", records=rows.executions, columns=_EXECUTION_COLUMNS)
        if rows.trades:
            await connection.copy_records_to_table(
                "stage_trades", records=rows.trades, columns=_TRADE_COLUMNS)
        orders = rows.orders
        if orders:
            await connection.copy_records_to_table(
                "stage_orders", records=orders, columns=_ORDER_COLUMNS)
        await connection.execute(_MOVE)
        if through:
            await connection.executemany(_PROGRESS, list(through.items()))


async def persisted_through(connection: asyncpg.Connection) -> dict[int, int]:
    return {row["partition"]: row["persisted_through"] for row in
            await connection.fetch("SELECT partition, persisted_through FROM partition_progress")}


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

    async def run(self, stop: asyncio.Event) -> None:
        await migrate(self.settings.database_url)
        log.info("writer %s: %d events streams -> postgres", self.consumer, len(self.streams))
        try:
            while not stop.is_set():
                try:
                    connection = await asyncpg.connect(self.settings.database_url)
                except (OSError, asyncpg.PostgresError) as error:
                    log.warning("postgres unreachable (%s); retrying", error)
                    await asyncio.sleep(0.5)
                    continue
                try:
                    await connection.execute(_STAGING)
                    known = await persisted_through(connection)
                    self.progress = {p: SequenceProgress(known.get(p, 0))
                                     for p in range(self.venue.partitions)}
                    await self._drain(connection, stop)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                        asyncpg.InternalClientError, RedisError) as error:
                    # Nothing was acknowledged for what did not commit: it is read again.
                    # (InternalClientError: a connection left mid-operation when its
                    # server died; a new connection starts clean.)
                    log.warning("writer interrupted (%r); resuming", error)
                    await asyncio.sleep(0.5)
                finally:
                    if not connection.is_closed():
                        connection.terminate()
        finally:
            await self.redis.aclose()

    async def _drain(self, connection: asyncpg.Connection, stop: asyncio.Event) -> None:
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
                await self._write(connection, pending)
        while not stop.is_set():
            read = await self.redis.xreadgroup(
                WRITERS_GROUP, self.consumer, {s: ">" for s in self.streams},
                count=_READ_COUNT, block=_BLOCK_MS)
            if read:
                await self._write(connection, read)
            await self._fill_gaps(connection)

    def _advance(self, rows: Rows) -> dict[int, int]:
        """Record what `rows` covers; the partitions whose `through` moved."""
        before = {p: progress.through for p, progress in self.progress.items()}
        for partition, head in rows.heads.items():
            self.progress[partition].saw_head(head)
        for partition, first, last in rows.covered:
            self.progress[partition].add(first, last)
        return {p: progress.through for p, progress in self.progress.items()
                if progress.through != before[p]}

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
        async with grpc.aio.insecure_channel(self.settings.engine_address(partition),
                                             options=GRPC_OPTIONS) as channel:
            stub = engine_pb2_grpc.MatchingEngineStub(channel)
            rows = Rows()
            async for batch in stub.Replay(pb.ReplayRequest(from_sequence=first), timeout=30):
                batch.partition = partition
                rows.add(batch)
                self.replayed_batches += 1
                if batch.events and batch.events[-1].sequence >= last:
                    break
                if len(rows.executions) >= 50_000:
                    await write_rows(connection, rows, self._advance(rows))
                    rows = Rows()
            await write_rows(connection, rows, self._advance(rows))

    async def _engine_head(self, partition: int) -> int | None:
        try:
            async with grpc.aio.insecure_channel(
                    self.settings.engine_address(partition)) as channel:
                health = await engine_pb2_grpc.MatchingEngineStub(channel).Health(
                    pb.HealthRequest(), timeout=2)
            return health.next_sequence - 1
        except grpc.aio.AioRpcError:
            return None  # the engine is away; the events stream is all there is

    async def _write(self, connection: asyncpg.Connection, read) -> None:
        rows = Rows()
        for _, entries in read:
            for _, fields in entries:
                rows.add(pb.ReportBatch.FromString(fields[FIELD_BATCH.encode()]))
        await write_rows(connection, rows, self._advance(rows))
        async with self.redis.pipeline(transaction=False) as pipe:
            # Persisted: their status is read from Postgres from now on.
            order_ids = rows.order_ids
            for start in range(0, len(order_ids), 10_000):
                pipe.hdel(self.keys.pending_orders, *order_ids[start:start + 10_000])
            for stream, entries in read:
                ids = [entry_id for entry_id, _ in entries]
                pipe.xack(stream, WRITERS_GROUP, *ids)
                ms = int(ids[-1].split(b"-")[0])
                pipe.xtrim(stream, minid=max(0, ms - _RETAIN_MS), approximate=True)
            await pipe.execute()
        self.written_batches += sum(len(entries) for _, entries in read)

    async def _ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, WRITERS_GROUP, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
