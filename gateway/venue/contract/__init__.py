"""What the venue's parts agree on, each said once: the venue's configuration
(config, instruments), its Redis keys and the format of their entries (keys, entries),
the engine's wire constants and command line (wire, engine), and the parts' health and
dead letters (health, dead_letters). Light to import: the operator takes it without
grpc or the local runner."""
