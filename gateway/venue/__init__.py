"""tradingvenue: order gateway, Redis Streams queue, submitters, writer and CLI."""
