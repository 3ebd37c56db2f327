"""The venue's PostgreSQL schema (versioned migrations) and its access."""

# Settings for every Postgres the venue starts (local and operator-managed). The writer
# fills WAL at about 60MB/s under full load: a checkpoint begins each time the WAL since
# the last one reaches about half of max_wal_size, and each makes the next write of every
# page a full-page image. At 4GB one began half a minute into a 60 s run, at 16GB none
# did; the same runs put Postgres at 8.3 and 7.2 CPU µs per order (with the larger
# wal_buffers: at its default 16MB, a backend found the buffer full and wrote WAL itself
# a thousand times a second).
WAL_BUFFERS = "128MB"
LOCAL_MAX_WAL_SIZE_MB = 16 * 1024  # a local venue's Postgres writes to the host's disk
# A local venue's Postgres has no replica and no archive: its WAL serves crash recovery
# alone, so it keeps the least (wal_level=minimal, which allows no WAL senders). Postgres
# then also drops each WAL segment it has finished from the page cache: the next segment
# is written into memory just freed, not into pages the machine has to find anew. On a
# VM whose host takes back free guest memory, a page first written costs about 5 µs
# (writing 2GB to a new file: 2.9 s of system time, against 0.1 s into cached pages),
# and a 60 s run writes 4GB of WAL: 60 s runs went from 93,000-99,000 to
# 105,000-111,000 orders/s, Postgres from 7.9-8.4 to 6.5-6.8 µs an order. A managed
# Postgres keeps wal_level=replica, for backups and standbys.
LOCAL_WAL_ARGS = ("-c", "wal_level=minimal", "-c", "max_wal_senders=0")
MIN_MAX_WAL_SIZE_MB = 1024


def write_heavy_args(max_wal_size_mb: int) -> tuple[str, ...]:
    """Those settings as the server's command line takes them."""
    settings = {"max_wal_size": f"{max_wal_size_mb}MB", "checkpoint_timeout": "15min",
                "wal_buffers": WAL_BUFFERS}
    return tuple(part for name, value in settings.items() for part in ("-c", f"{name}={value}"))


def max_wal_size_mb(volume_bytes: int) -> int:
    """The WAL a Postgres on a volume of `volume_bytes` may keep: two fifths of it (the
    tables have the rest), at least 1GB and at most what a local one keeps."""
    return max(MIN_MAX_WAL_SIZE_MB, min(LOCAL_MAX_WAL_SIZE_MB, volume_bytes * 2 // 5 >> 20))
