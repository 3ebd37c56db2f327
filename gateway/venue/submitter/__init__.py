"""The batch submitter process: shard streams in, engine batches out, the engine's
events to Redis (process: the submitter and its per-partition pumps), and the shards it
holds (leases)."""
