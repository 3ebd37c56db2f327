"""The batch submitter: shard streams in, engine batches out, engine events to Redis.

For each engine partition, one loop reads every shard it holds from its cursor
(XREAD, BLOCK), sends what it got as one CommandBatch on one long-lived gRPC stream,
waits for the engine's ReportBatch, appends it to the partition's events stream and
only then moves the shard's confirmed position (the consumer group's last-delivered id). Batching needs no
timer: while a batch is at the engine the next one accumulates
in Redis; an idle submitter sends a single order as soon as XREAD returns it.

A shard's cursor is read by position, not handed out by the consumer group: after a
takeover, group delivery could let a stale submitter's later entries reach the engine
before the new holder's earlier ones. Reading by position from the engine's own
high-water mark keeps every shard in stream order, whoever sends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import grpc
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from opentelemetry.trace import SpanKind, Status, StatusCode

from venue import telemetry
from venue._reportwire import batch_timing
from venue.contract import health
from venue.metrics import ENGINE_ROUND_TRIP, SUBMIT_BATCH_COMMANDS
from venue.contract.config import Settings, VenueConfig
from venue.contract.dead_letters import MALFORMED_ENTRY, DeadLetter, set_aside
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.contract.wire import (GRPC_OPTIONS, command_batch, method_path, source_fields,
                                 traceparent_field)
from venue.submitter.leases import ShardLeases
from venue.stopping import BlockingWaits
from venue.contract.entries import (FIELD_BATCH, FIELD_COMMANDS, FIELD_MARKS, FIELD_QUEUED,
                                    FIELD_TRACEPARENT, Mark, format_marks, parse_stream_id,
                                    split_frames)
from venue.contract.keys import Keys, SUBMITTERS_GROUP

log = logging.getLogger("venue.submitter")
_PART = "submitter"

_SUBMIT = method_path("Submit")
_BLOCK_MS = 500
_COMMANDS = FIELD_COMMANDS.encode()
_TRACEPARENT = FIELD_TRACEPARENT.encode()
_QUEUED = FIELD_QUEUED.encode()


def default_instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def later(a: str, b: str) -> str:
    return a if parse_stream_id(a) >= parse_stream_id(b) else b


class PartitionPump:
    """Moves the held shards of one engine partition to that engine."""

    def __init__(self, submitter: Submitter, partition: int) -> None:
        self.submitter = submitter
        self.partition = partition
        self.redis = submitter.redis
        self.keys = submitter.keys
        self.shards = submitter.venue.shards_of_partition(partition)
        self.address = submitter.settings.engine_address(partition)
        self._round_trip = ENGINE_ROUND_TRIP.labels(partition=str(partition))
        self._batch_commands = SUBMIT_BATCH_COMMANDS.labels(partition=str(partition))
        self.cursors: dict[int, str] = {}
        # Entries of each shard up to its cursor: given to Redis with the confirmed
        # position, so XINFO GROUPS reports the shard's lag (the autoscaler's input).
        self.entries_read: dict[int, int] = {}
        self.batch_id = 0
        self.batches = 0
        self.commands = 0
        self._reported_at = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        waits = BlockingWaits(stop)
        while not stop.is_set():
            try:
                async with grpc.aio.insecure_channel(self.address, options=GRPC_OPTIONS) as channel:
                    await self._pump(channel, waits)
                    return
            except (grpc.RpcError, RedisError, OSError, EngineStreamEnded, TimeoutError,
                    asyncio.InvalidStateError) as error:
                # (InvalidStateError: a write on a stream the engine's death just ended.)
                # The outcome of the batch in flight is unknown; the cursors did not
                # move, so it is sent again and the engine's high-water mark drops
                # what it already applied.
                log.warning("engine %s (partition %d): %s; reconnecting", self.address,
                            self.partition, error)
                await self._report_health(False, f"{type(error).__name__}: {error}",
                                          force=True)
                self.cursors.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _report_health(self, ok: bool, detail: str = "", force: bool = False) -> None:
        """Say whether this submitter reaches the partition's engine (venue.contract.health), at
        most every HEARTBEAT_S unless forced."""
        now = asyncio.get_running_loop().time()
        if not force and now - self._reported_at < health.HEARTBEAT_S:
            return
        self._reported_at = now
        try:
            await health.report(
                self.redis, self.keys,
                health.engine_field(self.partition, self.submitter.instance), ok,
                detail[:500])
        except RedisError:
            pass  # Redis is away: the silence says it

    async def _pump(self, channel: grpc.aio.Channel, waits: BlockingWaits) -> None:
        stop = waits.stop
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        health = engine_pb2_grpc.MatchingEngineStub(channel)
        call = channel.stream_stream(_SUBMIT)()  # raw bytes both ways: nothing re-encoded
        log.info("submitting to engine %s (partition %d)", self.address, self.partition)
        while not stop.is_set():
            if call.done():  # the engine went away while nothing was sent
                raise EngineStreamEnded(f"the Submit stream ended: {await call.code()}")
            await self._report_health(True)
            held = [s for s in self.shards if s in self.submitter.held]
            await self._sync_cursors(held, health)
            if not held:
                await waits.wait(asyncio.sleep(self.submitter.settings.lease_ms / 3000))
                continue
            streams = {self.keys.orders(s): self.cursors[s] for s in held}
            read = await waits.wait(self.redis.xread(
                streams, count=self.submitter.settings.submit_entries, block=_BLOCK_MS))
            if not read:
                continue
            entries: list[tuple[bytes, bytes, list[bytes]]] = []
            last: dict[int, str] = {}
            read_count: dict[int, int] = {}
            marks: list[Mark] = []
            malformed: list[DeadLetter] = []
            count = 0
            sampled: list[bytes] = []  # the traceparents of sampled entries (telemetry)
            for stream, stream_entries in read:
                shard = int(stream.rsplit(b":", 1)[1])
                read_count[shard] = len(stream_entries)
                mark = None
                for entry_id, fields in stream_entries:
                    ms, seq = parse_stream_id(entry_id)
                    try:
                        commands = split_frames(fields[_COMMANDS])
                        queued = fields.get(_QUEUED)
                        queued = int(queued) if queued is not None else None
                    except (KeyError, ValueError) as error:
                        # Never sent: the engine would refuse the whole batch over it.
                        malformed.append(DeadLetter(
                            _PART, MALFORMED_ENTRY, repr(error), repr(fields).encode(),
                            stream.decode(), entry_id.decode()))
                        continue
                    traceparent = fields.get(_TRACEPARENT, b"")
                    if telemetry.is_sampled(traceparent):
                        sampled.append(traceparent)
                    entries.append((traceparent_field(traceparent),
                                    source_fields(shard, ms, seq), commands))
                    count += len(commands)
                    mark = Mark(shard, (ms, seq), queued) if queued is not None else None
                last[shard] = entry_id.decode()
                if mark is not None:  # the shard's last entry's: the writer takes the latest
                    marks.append(mark)
            if malformed:
                async with self.redis.pipeline(transaction=False) as pipe:
                    set_aside(pipe, self.keys, malformed)
                    await pipe.execute()
            self.batch_id += 1
            traced = BatchSpans(self, sampled, len(entries), count) if sampled else None
            sent = time.perf_counter()
            await call.write(command_batch(self.batch_id, entries))
            reply = await call.read()
            self._round_trip.observe(time.perf_counter() - sent)
            self._batch_commands.observe(count)
            if reply is grpc.aio.EOF:
                if traced is not None:
                    traced.end(None)
                raise EngineStreamEnded("engine closed the Submit stream")
            if traced is not None:
                traced.answered(reply)
            await self._confirm(reply, last, read_count, marks,
                                traced.traceparent if traced is not None else None)
            if traced is not None:
                traced.end(reply)
            self.batches += 1
            self.commands += count
        await call.done_writing()

    async def _confirm(self, reply: bytes, last: dict[int, str], read_count: dict[int, int],
                       marks: list[Mark], traceparent: str | None = None) -> None:
        """Publish the engine's events, with the shards' marks they answer (the writer,
        having stored them, trims the shard streams) and, when the batch was traced, its
        span's context; then move each shard's confirmed position."""
        fields = {FIELD_BATCH: reply}
        if marks:
            fields[FIELD_MARKS] = format_marks(marks)
        if traceparent is not None:
            fields[FIELD_TRACEPARENT] = traceparent
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.events(self.partition), fields)
            for shard, entry_id in last.items():
                self.entries_read[shard] += read_count[shard]
                if shard not in self.submitter.held:
                    continue  # given up meanwhile: its new holder moves it now
                pipe.xgroup_setid(self.keys.orders(shard), SUBMITTERS_GROUP, entry_id,
                                  entries_read=self.entries_read[shard])
            await pipe.execute()
        self.cursors.update(last)

    async def _sync_cursors(self, held: list[int],
                            health: engine_pb2_grpc.MatchingEngineStub) -> None:
        """Start newly held shards at the engine's mark; forget shards given up."""
        for shard in list(self.cursors):
            if shard not in held:
                del self.cursors[shard]
                del self.entries_read[shard]
        new = [s for s in held if s not in self.cursors]
        if not new:
            return
        engine = await health.Health(pb.HealthRequest(), timeout=10)
        marks = {m.shard: f"{m.stream_ms}-{m.stream_seq}" for m in engine.shard_marks}
        resumed: list[Mark] = []
        for shard in new:
            confirmed, entries_read = await self._confirmed_position(shard)
            engine_mark = marks.get(shard, "0-0")
            if parse_stream_id(engine_mark) < parse_stream_id(confirmed):
                log.warning("engine partition %d is behind shard %d (%s < %s): it lost its "
                            "state; resuming from the confirmed position", self.partition,
                            shard, engine_mark, confirmed)
            cursor = later(engine_mark, confirmed)
            stream = self.keys.orders(shard)
            if entries_read is None:  # never recorded: count what is left after the cursor
                info = await self.redis.xinfo_stream(stream)
                after = await self.redis.xrange(stream, f"({cursor}", "+")
                entries_read = info["entries-added"] - len(after)
            elif cursor != confirmed:  # the engine had a batch the group was not moved for
                entries_read += len(await self.redis.xrange(stream, f"({confirmed}", cursor))
            self.cursors[shard] = cursor
            self.entries_read[shard] = entries_read
            log.info("shard %d: resuming after %s", shard, cursor)
            if cursor != "0-0" and (entry := await self.redis.xrange(stream, cursor, cursor)):
                if (queued := entry[0][1].get(_QUEUED)) is not None:
                    resumed.append(Mark(shard, parse_stream_id(cursor), int(queued)))
        if resumed:
            # Every entry up to the cursor is answered, within the events before the
            # engine's next sequence: said as a batch of no events, for the writer to
            # mark those shards persisted once it holds them. (The batch whose events a
            # killed holder never published is one the writer replays, without marks.)
            await self.redis.xadd(self.keys.events(self.partition), {
                FIELD_BATCH: pb.ReportBatch(partition=self.partition,
                                            next_sequence=engine.next_sequence
                                            ).SerializeToString(),
                FIELD_MARKS: format_marks(resumed)})

    async def _confirmed_position(self, shard: int) -> tuple[str, int | None]:
        """The group's confirmed position of `shard` and the entries read up to it."""
        stream = self.keys.orders(shard)
        try:
            await self.redis.xgroup_create(stream, SUBMITTERS_GROUP, id="0", mkstream=True,
                                           entries_read=0)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        for group in await self.redis.xinfo_groups(stream):
            if group["name"] == SUBMITTERS_GROUP.encode():
                return group["last-delivered-id"].decode(), group["entries-read"]
        return "0-0", 0


class BatchSpans:
    """The spans of one batch that carries sampled orders: the batch (CONSUMER, child of
    the first sampled order's publish span, linked to each), the engine round trip
    (CLIENT) and, inside it, the engine's own time from the answer's BatchTiming."""

    def __init__(self, pump: PartitionPump, sampled: list[bytes], entries: int,
                 commands: int) -> None:
        self.batch = telemetry.start_linked(
            f"process {pump.keys.prefix}:orders", SpanKind.CONSUMER, sampled, attributes={
                "messaging.system": telemetry.MESSAGING_SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": f"{pump.keys.prefix}:orders",
                "messaging.batch.message_count": entries,
                "venue.partition": pump.partition, "venue.commands": commands})
        self.traceparent = telemetry.traceparent_of(self.batch)
        host, _, port = pump.address.rpartition(":")
        self.call = telemetry.tracer().start_span(
            _SUBMIT.lstrip("/"), context=telemetry.trace.set_span_in_context(self.batch),
            kind=SpanKind.CLIENT, attributes={
                "rpc.system": "grpc", "rpc.service": _SUBMIT.split("/")[1],
                "rpc.method": "Submit", "server.address": host,
                "server.port": int(port) if port.isdigit() else 0,
                "venue.batch_id": pump.batch_id})

    def answered(self, reply: bytes) -> None:
        timing = batch_timing(reply)
        if timing is not None:
            received, match_start, matched, journaled, answered = timing
            for name, start, end in (("engine queue", received, match_start),
                                     ("engine match", match_start, matched),
                                     ("engine journal", matched, journaled),
                                     ("engine answer", journaled, answered)):
                if 0 < start <= end:
                    telemetry.record_interval(name, self.call, start, end)
        self.call.end()

    def end(self, reply: bytes | None) -> None:
        if reply is None:
            self.call.set_status(Status(StatusCode.ERROR, "the engine closed the stream"))
            self.call.end()
        self.batch.end()


class EngineStreamEnded(Exception):
    pass


class Submitter:
    def __init__(self, settings: Settings, venue: VenueConfig | None = None) -> None:
        self.settings = settings
        self.venue = venue or settings.venue()
        self.keys = Keys(self.venue.name)
        self.redis = Redis.from_url(settings.redis_url)
        self.instance = settings.instance or default_instance_name()
        self.leases = ShardLeases(self.redis, self.keys, list(range(self.venue.shards)),
                                  self.instance, settings.lease_ms)
        self.pumps = [PartitionPump(self, p) for p in range(self.venue.partitions)]

    @property
    def held(self) -> set[int]:
        return self.leases.held

    async def run(self, stop: asyncio.Event) -> None:
        log.info("submitter %s for venue %s: %d shards, %d partitions", self.instance,
                 self.venue.name, self.venue.shards, self.venue.partitions)
        try:
            await health.forget_old(self.redis, self.keys, health.ENGINE)
        except RedisError:
            pass
        leasing = asyncio.create_task(self._keep_leases(stop))
        try:
            await asyncio.gather(*(pump.run(stop) for pump in self.pumps))
        finally:
            leasing.cancel()
            await asyncio.gather(leasing, return_exceptions=True)
            await self.leases.release_all()
            await self.redis.aclose()

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.leases.refresh(self.venue.shards)
                live = await self.leases.live_submitters()
                for shard in self.leases.over_share(self.venue.shards, live):
                    # Given back between batches: the pump drops the shard's cursor
                    # when it no longer sees it held.
                    await self.leases.release(shard)
            except (RedisError, OSError) as error:
                # Keep trying: a submitter that stopped leasing would leave the shards
                # it lost meanwhile to nobody.
                log.warning("redis unreachable while renewing leases: %r", error)
            await asyncio.sleep(self.settings.lease_ms / 3000)
