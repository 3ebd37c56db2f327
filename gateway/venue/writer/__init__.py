"""The database writer process: engine events from Redis into Postgres (process), a
run of report batches made rows (rows, in C by venue._reportwire), their COPY format
(copy_format), the statements (store), which sequences are persisted (progress) and
which shards' marks hold (marks)."""
