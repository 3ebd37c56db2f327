"""The venue's PostgreSQL schema (versioned migrations) and its access."""
