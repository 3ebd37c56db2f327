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
