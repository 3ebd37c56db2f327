"""`venue bench market`: the market-data feed while orders flow.

Starts a local venue and drives it at --rate orders/s (batch requests, as `venue bench
e2e --mode batch --rate`, over --connections) for --duration seconds twice: without subscribers, then with
--subscribers book subscriptions on one symbol (/v1/market, --depth, --interval). The
subscribers run in a process of their own, on plain sockets: every one counts the frames
it is sent (the others read what has come every POLL_S, so that this process, on the
venue's own cores, takes less of them); one in --measure-every reads each as it comes,
parses them, follows the seq / prevSeq chain and times each update from the engine's time of its last change (`time`) to its arrival: the
kernel's receive time of the read that completed the frame (SO_TIMESTAMPNS), so what is
measured is the venue's delivery, not how long this process then took to get round a
thousand sockets on the venue's own cores. That second figure is given too, as `read_*`:
the time the frame was parsed here. They count from the start of the load until SETTLE_S
after its end, so the last orders' messages are counted too.
Prints JSON: messages and bytes delivered per second, both delays' p50 / p99 / max, gaps
seen, subscribers cut off as slow, and the order throughput with and without them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

from venue.bench.cpu import parts_cpu_seconds
from venue.bench.e2e import _count_orders, _drive, _percentile
from venue.bench.load import LoadSpec
from venue.contract.config import Settings, VenueConfig
from venue.local.process import free_port
from venue.local.venue import LocalVenue

# Linux's (asm-generic) SO_TIMESTAMPNS, also its control message's type: a struct timespec
# of the kernel's receive time with each read. Python's socket module does not name it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
POLL_S = 0.05  # how often the subscribers that only count read
# After the load, how long the subscribers go on counting: the last orders' messages
# reach them (the load ends at its last answer, before the engine has matched those
# orders), and only then does this process query the database.
SETTLE_S = 2.0


def _masked_text(payload: bytes) -> bytes:
    """A client's text frame (clients mask; a zero mask keeps the payload as it is)."""
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else \
        bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


class _Subscriber:
    """One /v1/market connection read as raw frames, each read with its kernel time."""

    def __init__(self, host: str, path: str, subscribe: bytes, measuring: bool) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        "\r\n").encode()
        self.subscribe = subscribe
        self.measuring = measuring
        self.buffer = bytearray()
        self.upgraded = False
        self.sock: socket.socket | None = None
        self.loop = asyncio.get_running_loop()
        self.ready = self.loop.create_future()
        self.frames = self.bytes = self.gaps = 0
        self.closed_code: int | None = None
        self.delays_ms: list[float] = []
        self.read_delays_ms: list[float] = []
        self.arrived = 0.0
        self.seq: int | None = None
        self.counting = False

    async def connect(self, address: tuple[str, int]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await self.loop.sock_connect(sock, address)
        self.sock = sock
        sock.send(self.request)
        self.loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def drain(self) -> None:
        while self.sock is not None and self._readable():
            pass

    def _readable(self) -> bool:
        """Reads what has come; False when nothing had."""
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 18, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            data, ancillary = b"", []
            self.closed_code = self.closed_code or 1006  # closed without a close frame
        if not data:
            self.close()
            if not self.ready.done():
                self.ready.set_exception(ConnectionError("closed before subscribing"))
            return False
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                self.arrived = seconds + nanoseconds / 1e9
        self.data_received(data)
        return True

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(bytes(buffer[:200]).decode()))
                return
            del buffer[:end + 4]
            self.upgraded = True
            self.sock.send(_masked_text(self.subscribe))
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, length = buffer[position], buffer[position + 1] & 0x7F
            head = 2
            if length == 126:
                if size - position < 4:
                    break
                length, head = int.from_bytes(buffer[position + 2:position + 4], "big"), 4
            elif length == 127:
                if size - position < 10:
                    break
                length, head = int.from_bytes(buffer[position + 2:position + 10], "big"), 10
            if size - position < head + length:
                break
            opcode = first & 0x0F
            payload_at = position + head
            if opcode == 1:
                self._text(buffer, payload_at, length)
            elif opcode == 9:  # ping: pong with its payload
                payload = bytes(buffer[payload_at:payload_at + length])
                self.sock.send(bytes((0x8A, 0x80 | length)) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.closed_code = int.from_bytes(buffer[payload_at:payload_at + 2], "big")
            position = payload_at + length
        del buffer[:position]

    def _text(self, buffer: bytearray, at: int, length: int) -> None:
        if self.counting:
            self.frames += 1
            self.bytes += length
        if not self.measuring and self.ready.done():
            return
        message = json.loads(bytes(buffer[at:at + length]))
        kind = message.get("type")
        if kind == "snapshot":
            self.seq = message["seq"]
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "update":
            if self.seq is not None and message["prevSeq"] != self.seq:
                self.gaps += 1
            self.seq = message["seq"]
            if self.counting:
                sent = datetime.fromisoformat(message["time"]).timestamp()
                self.delays_ms.append((self.arrived - sent) * 1000)
                self.read_delays_ms.append((time.time() - sent) * 1000)


def _subscribers_main(url: str, count: int, subscribe: dict, measure_every: int,
                      pipe: Connection) -> None:
    """The subscribers' process: connect them all, say "ready", count between "go" and
    "stop", then send what was counted."""
    async def poll(counting: list[_Subscriber]) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            for subscriber in counting:
                subscriber.drain()

    async def main() -> None:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        request = json.dumps(subscribe).encode()
        subscribers = []
        for index in range(count):
            subscriber = _Subscriber(parts.netloc, parts.path, request,
                                     index % measure_every == 0)
            await subscriber.connect((parts.hostname, parts.port))
            subscribers.append(subscriber)
            if index % 50 == 49:
                await asyncio.gather(*(s.ready for s in subscribers[-50:]))
        await asyncio.gather(*(s.ready for s in subscribers))
        counting = [s for s in subscribers if not s.measuring]
        for subscriber in counting:
            loop.remove_reader(subscriber.sock.fileno())
        polling = asyncio.create_task(poll(counting))
        pipe.send("ready")
        for word in ("go", "stop"):
            await loop.run_in_executor(None, pipe.recv)
            for subscriber in subscribers:
                subscriber.drain()  # what came before the word counts as before it
                subscriber.counting = word == "go"
        polling.cancel()
        pipe.send({"frames": sum(s.frames for s in subscribers),
                   "bytes": sum(s.bytes for s in subscribers),
                   "gaps": sum(s.gaps for s in subscribers),
                   "cut_off": sum(s.closed_code is not None for s in subscribers),
                   "delays_ms": [d for s in subscribers for d in s.delays_ms],
                   "read_delays_ms": [d for s in subscribers for d in s.read_delays_ms]})
        for subscriber in subscribers:
            subscriber.close()

    # On uvloop, as the gateway: the subscribers share the venue's cores, and each
    # message reaches the last of them only after the loop has read it for the others.
    uvloop.run(main())


def _load(url: str, keys: tuple[str, ...], venue: LocalVenue, args: argparse.Namespace,
          tag: str, subscribers: tuple[Connection, int] | None = None) -> dict:
    """Drives the venue for a run. `subscribers`: the pipe to their process and its pid;
    they count from just before the load until SETTLE_S after it, before this process's
    own queries (a count over the whole orders table) take the venue's cores while the
    last orders' messages are on their way."""
    spec = LoadSpec(url=url, path="/v1/orders/batch", keys=keys,
                    instruments=tuple(venue.venue.instruments), duration_s=args.duration,
                    connections=args.connections, batch_size=args.batch_size, seed=1, tag=tag,
                    rate=args.rate)
    before = asyncio.run(_count_orders(venue.database_url))
    parts = venue.part_pids() | ({"subscribers": subscribers[1]} if subscribers else {})
    if subscribers:
        subscribers[0].send("go")
    cpu_before = parts_cpu_seconds(parts)
    started = time.monotonic()
    results = _drive([spec])
    elapsed = time.monotonic() - started
    cpu = {name: seconds - cpu_before[name] for name, seconds in parts_cpu_seconds(parts).items()}
    if subscribers:
        time.sleep(SETTLE_S)
        subscribers[0].send("stop")
    persisted = asyncio.run(_count_orders(venue.database_url)) - before
    latencies = [ms for r in results for ms in r.latencies_ms]
    return {"accepted_per_sec": round(sum(len(r.accepted_ids) for r in results)
                                      / args.duration, 1),
            "persisted_per_sec": round(persisted / args.duration, 1),
            "ack_p99_ms": _percentile(latencies, 0.99),
            # Each part's CPU over the run, in cores: what the feed costs, whatever the
            # host's speed this hour.
            "cpu_cores": {name: round(s / elapsed, 3) for name, s in cpu.items()},
            "load_cpu_cores": round(sum(r.cpu_s for r in results) / elapsed, 3)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench market", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--symbol", default="BTC-USD")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--interval", type=int, default=0, help="conflation, ms")
    parser.add_argument("--rate", type=float, default=50_000.0, help="orders/s driven")
    parser.add_argument("--batch-size", type=int, default=500)
    # At 4 (e2e's default) each connection sends a 500-order request every 40 ms and
    # waits for its answer: acks slower than that on average lower the rate offered, and
    # the ratio would measure the acks' latency (given beside it), not the orders carried.
    parser.add_argument("--connections", type=int, default=8,
                        help="order connections the rate is sent over")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each run")
    parser.add_argument("--measure-every", type=int, default=10,
                        help="one subscriber in this many parses and times its messages")
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say = (lambda _: None) if args.json else (lambda text: print(text, file=sys.stderr))

    data_dir = Path(tempfile.mkdtemp(prefix="venue-bench-market-"))
    data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
    venue = LocalVenue(Settings(redis_url=None, database_url=None), VenueConfig(), data_dir,
                       gateway_port=free_port(), say=say, env={
                           "VENUE_GATEWAY_WORKERS": str(args.gateway_workers),
                           # The subscribers all come from this machine's one address.
                           "VENUE_MARKET_SOCKETS_PER_ADDRESS": str(max(args.subscribers, 1))}
                       ).start()
    tag = f"m{int(time.time())}"
    child = None
    try:
        url, keys = venue.gateway_url, tuple(venue.keys.values())
        say(f"{args.rate:.0f} orders/s for {args.duration:.0f}s without subscribers ...")
        without = _load(url, keys, venue, args, f"{tag}a")
        say(f"connecting {args.subscribers} subscribers ...")
        ours, theirs = multiprocessing.Pipe()
        subscribe = {"type": "subscribe", "channel": "book", "symbol": args.symbol,
                     "depth": args.depth, "interval": args.interval}
        child = multiprocessing.get_context("spawn").Process(
            target=_subscribers_main, name="market-subscribers",
            args=(url.replace("http://", "ws://") + "/v1/market", args.subscribers, subscribe,
                  args.measure_every, theirs))
        child.start()
        if not ours.poll(120) or ours.recv() != "ready":
            raise RuntimeError("the subscribers did not all subscribe within 120 s")
        say(f"{args.rate:.0f} orders/s for {args.duration:.0f}s with them ...")
        with_them = _load(url, keys, venue, args, f"{tag}b", (ours, child.pid))
        seen = ours.recv()
        delays, read_delays = seen.pop("delays_ms"), seen.pop("read_delays_ms")
        report = {
            "subscribers": args.subscribers, "symbol": args.symbol, "depth": args.depth,
            "interval_ms": args.interval, "rate": args.rate, "duration_s": args.duration,
            "messages_per_sec": round(seen["frames"] / args.duration, 1),
            "bytes_per_sec": round(seen["bytes"] / args.duration, 1),
            "delay_p50_ms": _percentile(delays, 0.50),
            "delay_p99_ms": _percentile(delays, 0.99),
            "delay_max_ms": round(max(delays), 3) if delays else None,
            "read_delay_p50_ms": _percentile(read_delays, 0.50),
            "read_delay_p99_ms": _percentile(read_delays, 0.99),
            "read_delay_max_ms": round(max(read_delays), 3) if read_delays else None,
            "delays_sampled": len(delays), "gaps": seen["gaps"], "cut_off": seen["cut_off"],
            "without_subscribers": without, "with_subscribers": with_them,
            "throughput_ratio": round(with_them["accepted_per_sec"]
                                      / without["accepted_per_sec"], 3)
            if without["accepted_per_sec"] else None,
            "gateway_workers": args.gateway_workers, "connections": args.connections,
            "cpus": os.cpu_count(),
        }
        # The gateway's CPU for each message delivered, beyond its run without them.
        extra = (with_them["cpu_cores"].get("gateway", 0)
                 - without["cpu_cores"].get("gateway", 0)) * args.duration
        report["gateway_extra_cpu_us_per_message"] = \
            round(extra * 1e6 / seen["frames"], 2) if seen["frames"] else None
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    finally:
        if child is not None:
            child.kill()
            child.join(5)
        venue.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
