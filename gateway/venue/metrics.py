"""The venue's Prometheus metrics: every definition in one place.

Each part (gateway, submitter, writer) records into these; the gateway serves them at
GET /metrics. A metric is defined here once, so two parts never name one thing twice.
Labels stay bounded: channels, reasons and shards, never ids or symbols typed by clients.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest

# Where an order came in: one request per order, the batch endpoint, or the WebSocket.
CHANNEL_HTTP = "http"
CHANNEL_BATCH = "batch"
CHANNEL_WS = "ws"

# Order entry ------------------------------------------------------------------------

ORDERS_ACCEPTED = Counter(
    "venue_orders_accepted", "New orders durably queued for the engine (202 or a WebSocket ack); "
    "a repeated clientOrderId counts in venue_orders_duplicate instead.", ["channel"])
ORDERS_DUPLICATE = Counter(
    "venue_orders_duplicate", "New orders whose clientOrderId was seen before: the original "
    "order was returned and nothing was queued.", ["channel"])
ORDERS_REJECTED = Counter(
    "venue_orders_rejected", "New orders refused by the gateway with nothing queued, by reason "
    "(the 422 error type, or shard_busy or persistence_behind for backpressure).", ["channel", "reason"])
ORDER_CHANGES = Counter(
    "venue_order_changes", "Cancels and replaces queued for the engine.", ["channel", "kind"])

# HTTP ---------------------------------------------------------------------------------

REQUEST_LATENCY = Histogram(
    "venue_http_request_duration_seconds", "Time from request to the end of the response, "
    "by method and handler (the route's endpoint, e.g. submit_order).", ["method", "handler"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))

# Queue --------------------------------------------------------------------------------

SHARD_LAG = Gauge(
    "venue_shard_lag", "Entries of a shard's order stream the submitters have not confirmed "
    "(consumer group lag of `submitters`), as the gateway last sampled it.", ["shard"])
SHARD_REFUSING = Gauge(
    "venue_shard_refusing", "1 while the gateway refuses new orders for a shard because its "
    "lag is over the limit (backpressure), else 0.", ["shard"])
UNPERSISTED_ORDERS = Gauge(
    "venue_unpersisted_orders", "Orders queued that the writer has not yet stored in Postgres, "
    "as the gateway last sampled it.")
UNPERSISTED_REFUSING = Gauge(
    "venue_unpersisted_refusing", "1 while the gateway refuses every new order because too many "
    "orders await Postgres (backpressure), else 0.")

# Dead letters -------------------------------------------------------------------------

DEAD_LETTERS = Counter(
    "venue_dead_letters", "Messages a part could not process and set aside in the venue's "
    "dead-letter stream, by part and reason; the part went on with the rest.",
    ["part", "reason"])

# WebSocket ----------------------------------------------------------------------------

WS_CONNECTIONS = Gauge("venue_ws_connections", "Open order-entry WebSockets.")
WS_REPORTS_SENT = Counter("venue_ws_reports_sent", "Execution reports pushed to WebSockets.")
WS_SLOW_CONSUMERS = Counter(
    "venue_ws_slow_consumers", "WebSockets closed because they did not read their reports "
    "fast enough (they resume with subscribe).")


def exposition() -> tuple[bytes, str]:
    """The process's metrics in the Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
