"""`venue bench writer`: the database writer alone, from the events stream into Postgres.

Starts a private Postgres and Redis in a temp dir and a writer process (`venue writer`,
as `venue up` runs it), puts --orders orders' worth of engine ReportBatches on partition
0's events stream and waits until Postgres has persisted every sequence.

The batches are what the engine emits for the e2e load (limit orders from two accounts
around a mid price, --cross of them crossing), --batch orders per batch, consecutive
sequences, next_sequence set. Per order its NEW report; a crossing order meets the
oldest resting order of the other side, often one from an earlier batch: of its own
account (--self-trade of the time) it is canceled with SELF_TRADE, else they trade (a
Trade, the maker's and the taker's TRADE reports) and the taker goes on to the next one;
what is left rests. A LevelUpdate per level a command changed. The defaults give the
e2e run's mix (about 1.6 executions and 0.08 trades per order); --self-trade 0 has about
half of all orders trade.

  --rate 0   (default) the whole backlog is queued while the writer is stopped
             (SIGSTOP), then it drains it: the most the writer can do
  --rate R   R orders/s offered on a schedule while the writer runs, so its transactions
             are as big as what arrives while it writes the one before

Prints JSON: orders, executions, trades (counted in Postgres, and checked against what
was sent), events (every engine event, level updates included), seconds (from the first
batch offered to its last sequence persisted), events_per_sec, orders_per_sec,
writer_cpu_s (utime + stime of the writer process, its start-up left out),
postgres_cpu_s (the postmaster and every process under it, exited ones included),
redis_cpu_s, and CPU µs per order of each, over the same time as seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from venue.bench.cpu import cpu_seconds, tree_cpu_seconds
from venue.db.migrate import migrate
from venue.enginepb import engine_pb2 as pb
from venue.local.process import Child, free_port
from venue.local.servers import PostgresServer, RedisServer
from venue.contract.entries import FIELD_BATCH
from venue.contract.keys import Keys

_MID = 1_000_000  # ticks
_KEYS = Keys("local")
_STREAM = _KEYS.events(0)


# --- the engine's output -----------------------------------------------------------------


class _Order:
    __slots__ = ("order_id", "client_order_id", "account_id", "instrument_id", "side",
                 "price", "quantity", "cum_qty", "leaves_qty", "cum_notional")

    def __init__(self, order_id: int, client_order_id: str, account_id: int,
                 instrument_id: int, side: int, price: int, quantity: int) -> None:
        self.order_id, self.client_order_id = order_id, client_order_id
        self.account_id, self.instrument_id, self.side = account_id, instrument_id, side
        self.price, self.quantity = price, quantity
        self.cum_qty, self.leaves_qty, self.cum_notional = 0, quantity, 0

    def status(self) -> int:
        if self.leaves_qty == 0:
            return pb.ORDER_STATUS_FILLED
        return pb.ORDER_STATUS_PARTIALLY_FILLED if self.cum_qty else pb.ORDER_STATUS_NEW


class EngineModel:
    """One engine partition's ReportBatches for a stream of new limit orders.

    Not a matching engine: which order crosses, and whether it meets its own account,
    is drawn at random, so the mix of events is set by two numbers. The events of one
    order and their order are the engine's (see engine/src/book/order_book.h).
    """

    def __init__(self, seed: int, cross: float, self_trade: float) -> None:
        self.rng = random.Random(seed)
        self.cross, self.self_trade = cross, self_trade
        self.sequence = self.trade_id = self.batch_id = 0
        self.next_order_id = 1 << 20
        self.clock_ns = time.time_ns()
        self.resting: dict[tuple[int, int], deque[_Order]] = {}
        self.orders = self.executions = self.trades = self.events = 0
        self.tag = f"w{seed}"

    def batch(self, orders: int) -> bytes:
        self.batch_id += 1
        batch = pb.ReportBatch(batch_id=self.batch_id, partition=0)
        for _ in range(orders):
            self._new_order(batch.events)
        batch.next_sequence = self.sequence + 1
        return batch.SerializeToString()

    def _new_order(self, events) -> None:
        rng = self.rng
        self.clock_ns += rng.randint(200, 4000)  # the events of one command share a time
        self.orders += 1
        order_id, self.next_order_id = self.next_order_id, self.next_order_id + 1
        account = rng.randint(1, 2)
        side = pb.SIDE_BUY if rng.random() < 0.5 else pb.SIDE_SELL
        offset = rng.randint(0, 10) * (1 if side == pb.SIDE_BUY else -1)
        order = _Order(order_id, f"{self.tag}-{account}-{order_id}", account,
                       rng.randint(1, 3), side, _MID + offset, rng.randint(1, 5))
        self._report(events, order, pb.EXEC_TYPE_NEW)
        other = self.resting.get((order.instrument_id, 3 - side))
        touched = False
        if other and rng.random() < self.cross:
            while order.leaves_qty and other:
                if rng.random() < self.self_trade:  # cancel-newest: the maker stays
                    order.leaves_qty = 0
                    self._report(events, order, pb.EXEC_TYPE_CANCELED,
                                 reason=pb.REJECT_REASON_SELF_TRADE)
                    break
                touched = True
                self._fill(events, order, other[0])
                if not other[0].leaves_qty:
                    other.popleft()
        if touched:
            self._level(events, order.instrument_id, 3 - side, order.price)
        if order.leaves_qty:
            self.resting.setdefault((order.instrument_id, side), deque()).append(order)
            self._level(events, order.instrument_id, side, order.price)

    def _fill(self, events, taker: _Order, maker: _Order) -> None:
        quantity, price = min(taker.leaves_qty, maker.leaves_qty), maker.price
        for order in (maker, taker):
            order.cum_qty += quantity
            order.leaves_qty -= quantity
            order.cum_notional += quantity * price
        self.trade_id += 1
        buy, sell = (taker, maker) if taker.side == pb.SIDE_BUY else (maker, taker)
        self.trades += 1
        self._event(events, trade=pb.Trade(
            trade_id=self.trade_id, instrument_id=taker.instrument_id, price=price,
            quantity=quantity, buy_order_id=buy.order_id, sell_order_id=sell.order_id,
            aggressor_side=taker.side))
        self._report(events, maker, pb.EXEC_TYPE_TRADE, quantity, price)
        self._report(events, taker, pb.EXEC_TYPE_TRADE, quantity, price)

    def _report(self, events, order: _Order, exec_type: int, last_qty: int = 0,
                last_px: int = 0, reason: int = 0) -> None:
        self.executions += 1
        status = pb.ORDER_STATUS_CANCELED if exec_type == pb.EXEC_TYPE_CANCELED \
            else order.status()
        self._event(events, report=pb.ExecutionReport(
            order_id=order.order_id, client_order_id=order.client_order_id,
            account_id=order.account_id, instrument_id=order.instrument_id, side=order.side,
            type=pb.ORDER_TYPE_LIMIT, time_in_force=pb.TIME_IN_FORCE_GTC, price=order.price,
            quantity=order.quantity, exec_type=exec_type, order_status=status,
            last_qty=last_qty, last_px=last_px, cum_qty=order.cum_qty,
            leaves_qty=order.leaves_qty, cum_notional=order.cum_notional,
            reject_reason=reason,
            trade_id=self.trade_id if exec_type == pb.EXEC_TYPE_TRADE else 0,
            shard=order.instrument_id % 4, stream_ms=self.clock_ns // 1_000_000,
            stream_seq=order.order_id & 0xFF))

    def _level(self, events, instrument_id: int, side: int, price: int) -> None:
        self._event(events, level=pb.LevelUpdate(
            instrument_id=instrument_id, side=side, price=price,
            quantity=self.rng.randint(1, 50), action=pb.LevelUpdate.ACTION_CHANGE))

    def _event(self, events, **body) -> None:
        self.sequence += 1
        self.events += 1
        events.add(sequence=self.sequence, timestamp_ns=self.clock_ns, **body)


# --- the run -----------------------------------------------------------------------------


def _batches(args: argparse.Namespace) -> tuple[EngineModel, list[bytes]]:
    model = EngineModel(args.seed, args.cross, args.self_trade)
    batches = []
    left = args.orders
    while left > 0:
        batches.append(model.batch(min(args.batch, left)))
        left -= args.batch
    return model, batches


def _exited(writer: Child) -> RuntimeError:
    lines = writer.log.read_text(errors="replace").splitlines()[-15:]
    return RuntimeError(f"the writer exited with {writer.process.returncode}:\n"
                        + "\n".join(lines))


async def _ready(redis: Redis, writer: Child, timeout: float = 60.0) -> None:
    """Until the writer waits for entries (a client blocked in XREADGROUP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not writer.alive():
            raise _exited(writer)
        if any(client.get("cmd") == "xreadgroup" and "b" in client.get("flags", "")
               for client in await redis.client_list()):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the writer did not start reading; see {writer.log}")


async def _offer(redis: Redis, batches: list[bytes], rate: float, batch_orders: int) -> None:
    """XADD the batches: all at once (rate 0), or each at its time on the schedule."""
    started = time.monotonic()
    for start in range(0, len(batches), 1 if rate else 64):
        if rate:
            await asyncio.sleep(max(0.0, started + start * batch_orders / rate
                                    - time.monotonic()))
        async with redis.pipeline(transaction=False) as pipe:
            for payload in batches[start:start + (1 if rate else 64)]:
                pipe.xadd(_STREAM, {FIELD_BATCH: payload})
            await pipe.execute()


async def _persisted(db: asyncpg.Connection, head: int, writer: Child, settle: float) -> None:
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        through = await db.fetchval(
            "SELECT persisted_through FROM partition_progress WHERE partition = 0")
        if through == head:
            return
        if not writer.alive():
            raise _exited(writer)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"Postgres did not hold sequence {head} after {settle:.0f}s")


async def _measure(args: argparse.Namespace, postgres: PostgresServer, redis_server: RedisServer,
                   data_dir: Path, say) -> dict:
    model, batches = _batches(args)
    say(f"{model.orders} orders in {len(batches)} batches: {model.executions} executions, "
        f"{model.trades} trades, {model.events} events")
    await migrate(postgres.url())
    env = dict(os.environ, REDIS_URL=redis_server.url, DATABASE_URL=postgres.url(),
               VENUE_ENGINES=f"127.0.0.1:{free_port()}",  # no engine: nothing to replay
               VENUE_INSTANCE="writer")
    writer = Child("writer", [sys.executable, "-m", "venue.cli", "writer"],
                   data_dir / "writer.log", env=env).start()
    redis = Redis.from_url(redis_server.url)
    db = await asyncpg.connect(postgres.url())
    try:
        await _ready(redis, writer)
        if not args.rate:
            writer.process.send_signal(signal.SIGSTOP)
            await _offer(redis, batches, 0, args.batch)
            batches.clear()  # in Redis now
        writer_cpu, postgres_cpu = cpu_seconds(writer.pid), tree_cpu_seconds(postgres.child.pid)
        redis_cpu = cpu_seconds(redis_server.child.pid)
        started = time.monotonic()
        if args.rate:
            await _offer(redis, batches, args.rate, args.batch)
        else:
            writer.process.send_signal(signal.SIGCONT)
        await _persisted(db, model.sequence, writer, args.settle)
        seconds = time.monotonic() - started
        writer_cpu = cpu_seconds(writer.pid) - writer_cpu
        postgres_cpu = tree_cpu_seconds(postgres.child.pid) - postgres_cpu
        redis_cpu = cpu_seconds(redis_server.child.pid) - redis_cpu
        counts = [await db.fetchval(f"SELECT count(*) FROM {table}")
                  for table in ("orders", "executions", "trades")]
    finally:
        if writer.alive():
            writer.process.send_signal(signal.SIGCONT)  # a stopped process ignores SIGTERM
        writer.stop()
        await db.close()
        await redis.aclose()
    if counts != [model.orders, model.executions, model.trades]:
        raise RuntimeError(f"Postgres holds {counts} (orders, executions, trades), the "
                           f"stream had {[model.orders, model.executions, model.trades]}")
    per_order = 1e6 / model.orders
    return {
        "benchmark": "writer", "rate": args.rate, "batch": args.batch,
        "orders": model.orders, "executions": model.executions, "trades": model.trades,
        "events": model.events, "seconds": round(seconds, 3),
        "events_per_sec": round(model.events / seconds, 1),
        "orders_per_sec": round(model.orders / seconds, 1),
        "writer_cpu_s": round(writer_cpu, 2), "postgres_cpu_s": round(postgres_cpu, 2),
        "redis_cpu_s": round(redis_cpu, 2),
        "writer_us_per_order": round(writer_cpu * per_order, 2),
        "postgres_us_per_order": round(postgres_cpu * per_order, 2),
        "redis_us_per_order": round(redis_cpu * per_order, 2),
        "cpus": os.cpu_count(),
    }


def _pg_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench writer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="orders per ReportBatch")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered orders/s (0: a backlog drained as fast as it can)")
    parser.add_argument("--cross", type=float, default=0.5,
                        help="share of orders that cross the book")
    parser.add_argument("--self-trade", type=float, default=0.85,
                        help="share of crossings that meet the same account's order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", type=_pg_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="a further Postgres setting (-c)")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="most seconds to wait for Postgres to hold everything")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.batch < 1:
        parser.error("--orders and --batch must be positive")
    say = (lambda _: None) if args.json else (lambda text: print(text, file=sys.stderr))
    # SIGTERM (a timeout, a CI runner) unwinds like Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    data_dir = Path(tempfile.mkdtemp(prefix="venue-bench-writer-"))
    data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
    postgres = PostgresServer(data_dir / "postgres", settings=dict(args.pg))
    redis_server = RedisServer(data_dir / "redis")
    try:
        postgres.start()
        redis_server.start()
        result = asyncio.run(_measure(args, postgres, redis_server, data_dir, say))
        print(json.dumps(result, indent=None if args.json else 2))
        return 0
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
