"""The venue's configuration: what it trades (VenueConfig) and where its parts are (Settings).

VenueConfig is the document the operator puts in the venue's ConfigMap and `venue up`
writes for a local run; Settings is the one pydantic-settings object every process
reads from its environment.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from venue.contract.instruments import Instrument

DEFAULT_INSTRUMENTS = (
    Instrument(symbol="BTC-USD", id=1, tick_size="0.01", lot_size="0.0001",
               min_price="0.01", max_price="1000000", max_quantity="1000"),
    Instrument(symbol="ETH-USD", id=2, tick_size="0.01", lot_size="0.001",
               min_price="0.01", max_price="100000", max_quantity="10000"),
    Instrument(symbol="AAPL", id=3, tick_size="0.01", lot_size="1",
               min_price="0.01", max_price="100000", max_quantity="1000000"),
)


class VenueConfig(BaseModel):
    """What the venue trades and how its queue and engine are cut.

    An instrument belongs to shard `id % shards`; a shard belongs to engine partition
    `shard % partitions`. One shard is one Redis stream, consumed in order by one
    submitter at a time, so everything about an instrument stays in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="local", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    shards: int = Field(default=4, ge=1, le=1024)
    partitions: int = Field(default=1, ge=1, le=64)
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS

    @model_validator(mode="after")
    def _unique_instruments(self) -> VenueConfig:
        symbols = [i.symbol for i in self.instruments]
        ids = [i.id for i in self.instruments]
        if not self.instruments:
            raise ValueError("instruments: at least one instrument is required")
        if len(set(symbols)) != len(symbols):
            raise ValueError("instruments: symbols must be unique")
        if len(set(ids)) != len(ids):
            raise ValueError("instruments: ids must be unique")
        if self.partitions > self.shards:
            raise ValueError("partitions must not exceed shards")
        return self

    @cached_property
    def by_symbol(self) -> dict[str, Instrument]:
        return {i.symbol: i for i in self.instruments}

    @cached_property
    def by_id(self) -> dict[int, Instrument]:
        return {i.id: i for i in self.instruments}

    def shard_of(self, instrument: Instrument) -> int:
        return instrument.id % self.shards

    def partition_of_shard(self, shard: int) -> int:
        return shard % self.partitions

    def shards_of_partition(self, partition: int) -> list[int]:
        return [s for s in range(self.shards) if self.partition_of_shard(s) == partition]

    def instruments_of_partition(self, partition: int) -> list[Instrument]:
        return [i for i in self.instruments
                if self.partition_of_shard(self.shard_of(i)) == partition]

    @classmethod
    def load(cls, path: str | Path | None) -> VenueConfig:
        if path is None:
            return cls()
        return cls.model_validate(json.loads(Path(path).read_text()))


# How long a clientOrderId is remembered by default: ten minutes (venue.queue.claims).
DEFAULT_DEDUP_WINDOW_S = 600
# The most orders an account may have open by default (its queued ones included, so
# above what one account has in flight at full rate): bounds what one account can put
# in the book and in Redis's sets of open orders (venue.queue.order_queue).
DEFAULT_OPEN_ORDERS_LIMIT = 1_000_000


RetentionAction = Literal["drop", "detach"]


class Settings(BaseSettings):
    """Where this process finds the venue's parts. Read from the environment."""

    model_config = SettingsConfigDict(env_prefix="VENUE_", extra="ignore")

    redis_url: str | None = Field(default=None,
                                  validation_alias=AliasChoices("REDIS_URL", "VENUE_REDIS_URL"))
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "VENUE_DATABASE_URL"))
    # Path of the VenueConfig JSON; unset means the default local instruments.
    config: Path | None = None
    # Engine address per partition, in partition order: "host:port,host:port".
    engines: str = "127.0.0.1:50051"
    # Private data directory of a local run (embedded Redis, Postgres, engine journal).
    data_dir: Path = Path(".venue")
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_workers: int = Field(default=1, ge=1, le=64)
    # The most stream entries a submitter reads per shard for one engine batch (an entry
    # holds one request's orders: one for POST /v1/orders, up to batch_max_orders for
    # POST /v1/orders/batch). It bounds the engine's passes, and a follower of its journal
    # (the market feed) has none of a pass's events until the whole pass is journaled: at
    # 64, a submitter that fell behind at 50,000 orders/s sent batches of 32,000 orders,
    # whose passes took 60-333 ms on two shared cores; at 16 (8,000 such orders) the
    # feed's p99 went from 50-425 ms to 59-120, and 100,000 orders/s offered carried the
    # same (README.md, Benchmarks).
    submit_entries: int = Field(default=16, ge=1, le=4096)
    # The most orders one POST /v1/orders/batch may carry.
    batch_max_orders: int = Field(default=1000, ge=1, le=10000)
    # A shard whose queue holds more than this many entries refuses new orders (429)
    # until the submitters catch up.
    shard_lag_limit: int = Field(default=100_000, ge=1)
    # When more than this many orders are queued and not yet in Postgres, every shard
    # refuses new orders (429) until the writer catches up: Redis holds each of them
    # (a few hundred bytes with its reports) until then.
    unpersisted_limit: int = Field(default=500_000, ge=1)
    # The writer runs at this niceness (0 to 19): on a machine it shares, the gateway
    # answering clients and the submitters feeding the engine go first, and the writer
    # takes the CPU they leave, in larger transactions. Persistence waits; nothing that
    # answers a client or matches an order waits on it.
    writer_niceness: int = Field(default=10, ge=0, le=19)
    # A clientOrderId repeated within this many seconds of its first use returns the
    # original order (venue.queue.claims; spec.gateway.dedupWindow).
    dedup_window_s: int = Field(default=DEFAULT_DEDUP_WINDOW_S, ge=1, le=30 * 86400)
    # Postgres keeps the days of orders, executions and trades that ended within this
    # many days, and lets older days go (venue.db.partitions; spec.postgres.retention):
    # 0 keeps everything. `drop` deletes them; `detach` leaves each day a table of its
    # own, out of the venue's, to be archived.
    retention_days: int = Field(default=0, ge=0, le=36_500)
    retention_action: RetentionAction = "drop"
    # A request's head must be in within this of its connection's opening (or of the
    # answer before it), its body within this of its head; past either the gateway
    # closes the connection, answering 408 what was begun (venue.api.http_protocol).
    request_head_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    request_body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # A /v1/market socket with no subscription for this long is closed (1008); a gateway
    # process serves at most this many (1013 to one more), well within its file
    # descriptors, so that market sockets never take order entry's.
    market_subscribe_within_s: float = Field(default=10.0, gt=0, le=3600)
    market_sockets: int = Field(default=10_000, ge=1)
    # ... and at most this many from one client address (as the gateway sees it: a
    # trusted proxy's X-Forwarded-For, FORWARDED_ALLOW_IPS), the thousand subscribers the
    # feed is measured with (README.md, Benchmarks).
    market_sockets_per_address: int = Field(default=1_000, ge=1)
    # A gateway process keeps at most this many HTTP connections open (fitted to a quarter
    # of its file descriptors), and this many from one address that is not a trusted
    # proxy's: one more is answered 503 or 429 and closed (venue.api.http_protocol).
    http_connections: int = Field(default=10_000, ge=1)
    http_connections_per_address: int = Field(default=1_000, ge=1)
    # What may wait in the gateway for a /v1/market socket that does not read, beyond the
    # kernel's buffers: past it the socket is closed, 1013 (a slow consumer).
    market_buffer_bytes: int = Field(default=4 << 20, ge=1 << 10)
    # A local venue (`venue up`) keeps each part's log under this many bytes, with this
    # many older copies (gateway.log.1, ...): a client opening connections by the
    # thousand, each logged, or a part saying the same thing again and again, fills no
    # disk (venue.local.process.rotate_log). In a cluster the kubelet rotates the
    # containers' logs.
    log_file_bytes: int = Field(default=100 << 20, ge=1 << 10)
    log_files: int = Field(default=5, ge=1, le=1000)
    # A gateway remembers which account a key names this long: a revoked key is refused
    # by every gateway within it (venue.api.auth).
    key_cache_ttl_s: float = Field(default=30.0, gt=0, le=3600)
    # Per-account limits of this gateway pod (venue.api.limits; its workers share them;
    # spec.gateway.accountLimits divided by the replicas): new orders per second, how
    # many at once above that (the bucket), and open order-entry WebSockets.
    account_orders_per_s: float = Field(default=100_000, gt=0)
    account_burst: float = Field(default=200_000, gt=0)
    account_ws_connections: int = Field(default=64, ge=1)
    # The most orders an account may have open, its queued ones included, venue-wide
    # (the enqueue script counts them in Redis: venue.queue.order_queue;
    # spec.gateway.accountLimits.openOrders). A new order past it is refused, 429.
    account_open_orders: int = Field(default=DEFAULT_OPEN_ORDERS_LIMIT, ge=1)
    # A submitter's lease on a shard lasts this long unless renewed.
    lease_ms: int = Field(default=5000, ge=500)
    # Name of this process among its peers (submitter / writer consumer name).
    instance: str | None = None
    # A submitter or writer serves its Prometheus metrics at /metrics on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # An API key that `venue migrate` registers for the account BOOTSTRAP_ACCOUNT (the
    # operator generates one per venue, in its <venue>-api-key Secret).
    bootstrap_api_key: str | None = None

    def venue(self) -> VenueConfig:
        return VenueConfig.load(self.config)

    def engine_address(self, partition: int) -> str:
        addresses = [a.strip() for a in self.engines.split(",") if a.strip()]
        if partition >= len(addresses):
            raise ValueError(
                f"VENUE_ENGINES lists {len(addresses)} engine(s); partition {partition} has none")
        return addresses[partition]
