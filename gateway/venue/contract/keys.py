"""Every Redis key of a venue, its consumer groups, and how its Redis keeps them.

One stream of orders per shard (`tv:<venue>:orders:<shard>`), read by the group
`submitters`; one stream of engine events per partition (`tv:<venue>:events:<p>`, each
entry one ReportBatch), read by the group `writers`. The fields of their entries are
venue.contract.entries'.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBMITTERS_GROUP = "submitters"
WRITERS_GROUP = "writers"

# How every Redis the venue starts (local and operator-managed) keeps the queue: in its
# append-only file alone, no RDB snapshots. The file is rewritten when it has grown to
# five times its last rewritten size, not twice (Redis's default): a rewrite forks and
# writes out every claim and queued entry, and under load rewrites were a third of
# Redis's CPU. Their RDB base is written uncompressed, which was a third of each one.
REDIS_PERSISTENCE_ARGS = ("--appendonly", "yes", "--save", "",
                          "--auto-aof-rewrite-percentage", "400", "--rdbcompression", "no",
                          # At a memory limit, writes are refused (the gateway answers 503
                          # queue_full): never is a queued order or a claim evicted.
                          "--maxmemory-policy", "noeviction")
# The share of a managed Redis's memory limit it may fill (--maxmemory): the rest is for
# the copy-on-write pages of an append-only file rewrite and for fragmentation.
REDIS_MAXMEMORY_SHARE = 0.7


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one venue."""

    venue: str

    @property
    def prefix(self) -> str:
        return f"tv:{self.venue}"

    def orders(self, shard: int) -> str:
        return f"{self.prefix}:orders:{shard}"

    def events(self, partition: int) -> str:
        return f"{self.prefix}:events:{partition}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    def client_order_ids(self, account_id: int, window_s: int, bucket: int) -> str:
        """Hash: clientOrderId -> order id, the account's claims of one bucket of time
        (the bucket-th window of window_s seconds since the epoch)."""
        return f"{self.prefix}:coids:{account_id}:{window_s}:{bucket}"

    def open_orders(self, account_id: int) -> str:
        """Set: the account's orders queued or open, as the enqueue script counts them
        against its limit: added as queued, taken out by the writer once it has
        persisted them closed (filled, canceled, rejected, expired)."""
        return f"{self.prefix}:open:{account_id}"

    @property
    def queued_runs(self) -> str:
        """Sorted set: runs of consecutive order ids queued and not yet persisted, as
        "first:last:shard:entry id", scored by the first: where a queued order is read."""
        return f"{self.prefix}:queued-runs"

    def shard_runs(self, shard: int) -> str:
        """List: the queued runs of `shard` in stream order, dropped once persisted."""
        return f"{self.prefix}:queued-runs:{shard}"

    @property
    def queued_counts(self) -> str:
        """Hash: shard -> how many new orders it has ever queued."""
        return f"{self.prefix}:queued"

    @property
    def persisted_marks(self) -> str:
        """Hash: shard -> "entry id count": every order of the shard's entries up to that
        id is in Postgres, `count` of them in all (see PersistedMarks)."""
        return f"{self.prefix}:persisted"

    def order_id_counter(self, day: int) -> str:
        """Counter: the order ids of one UTC day taken so far (venue.queue.order_ids)."""
        return f"{self.prefix}:order-id:{day}"

    @property
    def dead_letters(self) -> str:
        """Stream: messages a part could not process, set aside (venue.contract.dead_letters)."""
        return f"{self.prefix}:dead-letters"

    @property
    def health(self) -> str:
        """Hash: what each part last said of its own health (venue.contract.health)."""
        return f"{self.prefix}:health"
