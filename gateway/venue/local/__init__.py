"""A whole venue on one machine: embedded Redis and Postgres, the engine, the processes."""
