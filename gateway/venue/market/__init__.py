"""Market data: books and trades from the engine's events, for /v1/market."""
