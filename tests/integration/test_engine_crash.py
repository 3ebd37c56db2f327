"""The engine loses nothing across crashes: SIGKILL it mid-stream again and again,
restart it on the same data dir, resend from the last confirmed position as a
submitter does, and the books and the whole report stream come out exactly as in a run
that never crashed."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.local.engine import EngineProcess

SHARDS = 3
COMMANDS = 3000
KILLS = 30
SEED = 20261121
STREAM_MS = 1_700_000_000_000


class JournalingEngine(EngineProcess):
    """The real binary with small snapshots, so restarts cross snapshot boundaries."""

    def __init__(self, *args, extra: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    def start(self, timeout: float = 30.0) -> JournalingEngine:
        import venue.local.engine as engine_module
        arguments = engine_module.engine_arguments
        engine_module.engine_arguments = lambda *a: arguments(*a) + self.extra
        try:
            super().start(timeout)
        finally:
            engine_module.engine_arguments = arguments
        return self

    def sigkill(self) -> None:
        if self.child is not None and self.child.alive():
            self.child.process.send_signal(signal.SIGKILL)


def _feed(venue: VenueConfig) -> list[pb.Command]:
    """Every command kind, many accounts, prices that cross: seeded, so both runs match.
    One arrival order across the shards (stream ids rise within each shard), as one
    submitter holding every shard reads them: both runs apply the same sequence."""
    rng = random.Random(SEED)
    instruments = [i.id for i in venue.instruments_of_partition(0)]
    feed: list[pb.Command] = []
    sent: list[tuple[int, int, int]] = []  # (order id, account, instrument)
    order_id = 0
    entry = (0, STREAM_MS, -1)  # (shard, stream_ms, entry_index) of the last command
    for n in range(COMMANDS):
        if rng.random() < 0.25:  # one request's commands share a stream entry
            shard, ms, index = entry[0], entry[1], entry[2] + 1
        else:
            shard, ms, index = rng.randrange(SHARDS), STREAM_MS + n, 0
        entry = (shard, ms, index)
        command = pb.Command(shard=shard, stream_ms=ms, stream_seq=0, entry_index=index)
        instrument = rng.choice(instruments)
        kind = rng.random()
        if kind < 0.004:
            command.expire_day.instrument_id = rng.choice([0, instrument])
        elif kind < 0.5 or not sent:
            order_id += 1
            order = command.new_order
            order.order_id = order_id
            order.client_order_id = f"c-{order_id}"
            order.account_id = rng.randint(1, 12)
            order.instrument_id = instrument
            order.side = rng.choice([pb.SIDE_BUY, pb.SIDE_SELL])
            form = rng.random()
            if form < 0.08:
                order.type = pb.ORDER_TYPE_MARKET
                order.time_in_force = pb.TIME_IN_FORCE_IOC
            else:
                order.type = pb.ORDER_TYPE_LIMIT
                order.price = rng.randint(9_990, 10_010)
                order.time_in_force = rng.choice([pb.TIME_IN_FORCE_GTC, pb.TIME_IN_FORCE_GTC,
                                                  pb.TIME_IN_FORCE_DAY, pb.TIME_IN_FORCE_IOC,
                                                  pb.TIME_IN_FORCE_FOK])
                order.post_only = (order.time_in_force in (pb.TIME_IN_FORCE_GTC, pb.TIME_IN_FORCE_DAY)
                                   and rng.random() < 0.1)
            order.quantity = rng.randint(1, 30)
            sent.append((order_id, order.account_id, instrument))
        elif kind < 0.72:
            oid, account, instrument = rng.choice(sent)
            command.cancel.order_id = oid
            command.cancel.account_id = account
            command.cancel.instrument_id = instrument
        else:
            oid, account, instrument = rng.choice(sent)
            command.replace.order_id = oid
            command.replace.account_id = account
            command.replace.instrument_id = instrument
            command.replace.price = rng.randint(9_990, 10_010)
            command.replace.quantity = rng.randint(1, 30)
        feed.append(command)
    return feed


class Submitter:
    """Sends the feed from its confirmed position, as the real one does: a batch is
    confirmed (the position moves) only when the engine answered it, so whatever was
    in flight when the engine died is sent again."""

    def __init__(self, feed: list[pb.Command], rng: random.Random) -> None:
        self.feed = feed
        self.rng = rng
        self.confirmed = 0
        self.batch_id = 0
        self.received: dict[int, bytes] = {}  # sequence -> the event as first answered
        self.mismatches: list[int] = []

    def done(self) -> bool:
        return self.confirmed == len(self.feed)

    def next_batch(self) -> tuple[pb.CommandBatch, int]:
        end = min(len(self.feed), self.confirmed + self.rng.randint(1, 40))
        batch = pb.CommandBatch(batch_id=self.batch_id + 1)
        batch.commands.extend(self.feed[self.confirmed:end])
        return batch, end

    def send(self, address: str, batch: pb.CommandBatch, end: int) -> None:
        """One batch and its answer; raises grpc.RpcError when the engine died."""
        with grpc.insecure_channel(address) as channel:
            stub = engine_pb2_grpc.MatchingEngineStub(channel)
            reply = next(stub.Submit(iter([batch]), timeout=10))
        assert reply.batch_id == batch.batch_id
        for event in reply.events:
            wire = event.SerializeToString(deterministic=True)
            first = self.received.setdefault(event.sequence, wire)
            if first != wire:
                self.mismatches.append(event.sequence)
        self.batch_id = batch.batch_id
        self.confirmed = end


def _replay_all(address: str) -> list[pb.Event]:
    with grpc.insecure_channel(address) as channel:
        stub = engine_pb2_grpc.MatchingEngineStub(channel)
        events = [e for batch in stub.Replay(pb.ReplayRequest(from_sequence=1), timeout=30)
                  for e in batch.events]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    return events


def _books(address: str, venue: VenueConfig) -> dict[int, bytes]:
    with grpc.insecure_channel(address) as channel:
        stub = engine_pb2_grpc.MatchingEngineStub(channel)
        return {i.id: stub.GetBook(pb.BookRequest(instrument_id=i.id), timeout=10)
                .SerializeToString(deterministic=True)
                for i in venue.instruments_of_partition(0)}


def _without_clock(events: list[pb.Event]) -> list[bytes]:
    out = []
    for event in events:
        copy = pb.Event()
        copy.CopyFrom(event)
        copy.timestamp_ns = 0  # each run applies its batches at its own time
        out.append(copy.SerializeToString(deterministic=True))
    return out


def _engine(venue: VenueConfig, data_dir: Path) -> JournalingEngine:
    return JournalingEngine(venue, partition=0, data_dir=data_dir,
                            extra=["--snapshot-every", "250", "--fsync", "batch", "--cpus", "none"])


@pytest.mark.timeout(120)
def test_sigkilled_engine_recovers_the_books_and_report_stream_of_a_run_that_never_crashed(
        built_engine: Path, venue_config: VenueConfig, tmp_path: Path) -> None:
    feed = _feed(venue_config)

    steady = _engine(venue_config, tmp_path / "steady").start()
    try:
        submitter = Submitter(feed, random.Random(1))
        while not submitter.done():
            submitter.send(steady.address, *submitter.next_batch())
        expected_events = _replay_all(steady.address)
        expected_books = _books(steady.address, venue_config)
    finally:
        steady.stop()

    started = time.monotonic()
    crashing = _engine(venue_config, tmp_path / "crashing").start()
    rng = random.Random(2)
    submitter = Submitter(feed, random.Random(3))
    kills = 0
    try:
        batches_to_kill = rng.randint(1, 4)
        while not submitter.done():
            batch, end = submitter.next_batch()
            killer = None
            if kills < KILLS and batches_to_kill == 0:
                # Mid-stream: before, while or after the batch is applied and journaled.
                killer = threading.Timer(rng.uniform(0, 0.004), crashing.sigkill)
                killer.start()
            try:
                submitter.send(crashing.address, batch, end)
            except grpc.RpcError:
                pass  # died with the batch in flight: it is resent from the cursors
            if killer is not None:
                killer.join()
                crashing.child.process.wait(timeout=10)
                kills += 1
                batches_to_kill = rng.randint(1, 4)
                crashing.start()
            else:
                batches_to_kill -= 1
        # One more crash after the last answer, then a clean look at the result.
        crashing.sigkill()
        crashing.child.process.wait(timeout=10)
        kills += 1
        crashing.start()
        events = _replay_all(crashing.address)
        books = _books(crashing.address, venue_config)
    finally:
        crashing.stop()
    elapsed = time.monotonic() - started

    print(f"engine SIGKILLed and restarted {kills} times in {elapsed:.1f}s; "
          f"{len(events)} events compared")
    assert kills >= 20
    assert submitter.mismatches == []  # a resent batch is answered exactly as first answered
    assert _without_clock(events) == _without_clock(expected_events)
    for event in events:  # and what was answered is what the journal rebuilds, clock included
        if event.sequence in submitter.received:
            assert submitter.received[event.sequence] == event.SerializeToString(deterministic=True)
    assert books == expected_books


@pytest.mark.timeout(120)
def test_pruned_journal_recovers_after_sigkill_and_refuses_a_replay_of_what_it_pruned(
        built_engine: Path, venue_config: VenueConfig, tmp_path: Path) -> None:
    """The writer tells the engine how far Postgres holds its events (Persisted); the
    engine deletes the journal and snapshots those events no longer need, keeping the two
    newest snapshots persisted past. A Replay of a pruned range is refused, naming it; a
    later range is answered exactly; a SIGKILL then recovers the same books."""
    feed = _feed(venue_config)
    data = tmp_path / "engine"
    engine = JournalingEngine(venue_config, partition=0, data_dir=data, extra=[
        "--snapshot-every", "250", "--event-log-events", "256", "--cpus", "none"]).start()
    try:
        submitter = Submitter(feed, random.Random(4))
        while not submitter.done():
            submitter.send(engine.address, *submitter.next_batch())
        expected = _replay_all(engine.address)
        books = _books(engine.address, venue_config)
        before = sorted(p.name for p in data.iterdir() if p.suffix in (".log", ".snap")
                        and p.name.startswith(("journal-", "snapshot-")))
        with grpc.insecure_channel(engine.address) as channel:
            stub = engine_pb2_grpc.MatchingEngineStub(channel)
            # Persisted through the middle: older snapshots and segments go.
            # The prune runs beside the call, which waits for it a bounded time; a call
            # answered `finished` had every prune asked before it done.
            request = pb.PersistedRequest(through_sequence=len(expected) // 2)
            answers = [stub.Persisted(request, timeout=10)]
            while not answers[-1].finished and len(answers) < 50:
                answers.append(stub.Persisted(request, timeout=10))
            assert answers[-1].finished
            after = sorted(p.name for p in data.iterdir() if p.name.startswith(
                ("journal-", "snapshot-")))
            assert set(after) < set(before)
            if answers[0].finished:
                assert answers[0].files_deleted == len(before) - len(after)
            assert len([name for name in after if name.startswith("snapshot-")]) >= 2
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.Replay(pb.ReplayRequest(from_sequence=1), timeout=30))
            assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
            assert "from_sequence 1" in refused.value.details()
            # The events after the middle are still rebuilt exactly.
            late = len(expected) // 2 + 1
            replayed = [e for batch in stub.Replay(pb.ReplayRequest(from_sequence=late),
                                                   timeout=30) for e in batch.events]
            assert replayed == expected[late - 1:]
        engine.sigkill()
        engine.child.process.wait(timeout=10)
        engine.start()
        assert _books(engine.address, venue_config) == books
    finally:
        engine.stop()
