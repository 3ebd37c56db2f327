"""The venue's PostgreSQL schema (versioned migrations) and its access."""

# Settings for every Postgres the venue starts (local and operator-managed). The writer
# fills WAL at tens of MB/s: at the default max_wal_size (1GB) a checkpoint began every
# 8 to 11 seconds, and each one makes the next write of every page a full-page image.
# 4GB of WAL fits the managed Postgres's default 10Gi volume with room for the tables.
WRITE_HEAVY_SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}
# ... as the server's command line takes them.
WRITE_HEAVY_ARGS = tuple(part for name, value in WRITE_HEAVY_SETTINGS.items()
                         for part in ("-c", f"{name}={value}"))
