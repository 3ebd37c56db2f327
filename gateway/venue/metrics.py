"""The venue's Prometheus metrics: every definition in one place.

Each part (gateway, submitter, writer) records into these; the gateway serves them at
GET /metrics. A metric is defined here once, so two parts never name one thing twice.
Labels stay bounded: channels, reasons and shards, never ids or symbols typed by clients.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client import Histogram, generate_latest, multiprocess

# Set by `venue gateway` (a fresh directory) before its worker processes start: each
# records into files there and /metrics, answered by any worker, adds them all up.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# That directory's name, in the temporary directory: this, the gateway's pid, a dash.
MULTIPROC_DIR_PREFIX = "venue-gateway-metrics-"

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

HTTP_REFUSED = Counter(
    "venue_http_refused", "Requests refused before any route read them, by reason: "
    "body_too_large (413), head_too_large (431), request_timeout (408 or closed: a head or "
    "body not in whole within its time), market_sockets (a market socket past the "
    "process's most, closed 1013), market_sockets_per_address (past the most from one "
    "client address, closed 1013), http_connections (503: an HTTP connection past the "
    "process's most) and connections_per_address (429: past the most from one address).",
    ["reason"])

# Queue --------------------------------------------------------------------------------

# Sampled by every gateway worker alike: across workers, the latest sample counts.
SHARD_LAG = Gauge(
    "venue_shard_lag", "Entries of a shard's order stream the submitters have not confirmed "
    "(consumer group lag of `submitters`), as the gateway last sampled it.", ["shard"],
    multiprocess_mode="mostrecent")
SHARD_REFUSING = Gauge(
    "venue_shard_refusing", "1 while the gateway refuses new orders for a shard because its "
    "lag is over the limit (backpressure), else 0.", ["shard"], multiprocess_mode="max")
UNPERSISTED_ORDERS = Gauge(
    "venue_unpersisted_orders", "Orders queued that the writer has not yet stored in Postgres, "
    "as the gateway last sampled it.", multiprocess_mode="mostrecent")
UNPERSISTED_REFUSING = Gauge(
    "venue_unpersisted_refusing", "1 while the gateway refuses every new order because too many "
    "orders await Postgres (backpressure), else 0.", multiprocess_mode="max")

# Dead letters -------------------------------------------------------------------------

DEAD_LETTERS = Counter(
    "venue_dead_letters", "Messages a part could not process and set aside in the venue's "
    "dead-letter stream, by part and reason; the part went on with the rest.",
    ["part", "reason"])

# WebSocket ----------------------------------------------------------------------------

WS_CONNECTIONS = Gauge("venue_ws_connections", "Open order-entry WebSockets.",
                       multiprocess_mode="livesum")
WS_REPORTS_SENT = Counter("venue_ws_reports_sent", "Execution reports pushed to WebSockets.")
WS_SLOW_CONSUMERS = Counter(
    "venue_ws_slow_consumers", "WebSockets closed because they did not read their reports "
    "fast enough (they resume with subscribe).")
MARKET_CONNECTIONS = Gauge("venue_market_connections", "Open market-data WebSockets.",
                           multiprocess_mode="livesum")
MARKET_MESSAGES = Counter("venue_market_messages", "Market-data messages handed to "
                          "subscribers, by channel.", ["channel"])
MARKET_SLOW_CONSUMERS = Counter(
    "venue_market_slow_consumers", "Market-data WebSockets closed because they fell behind "
    "their buffer.")


# Submitter ------------------------------------------------------------------------------

SUBMIT_BATCH_COMMANDS = Histogram(
    "venue_submit_batch_commands", "Commands in one batch a submitter sent to an engine "
    "partition.", ["partition"],
    buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536))
ENGINE_ROUND_TRIP = Histogram(
    "venue_engine_round_trip_seconds", "From a batch's send to the engine's answer, as the "
    "submitter saw it (journal fsync included).", ["partition"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0))

# Writer -------------------------------------------------------------------------------

WRITER_PERSISTED = Counter(
    "venue_writer_persisted_batches", "Engine answers (events entries) the writer stored in "
    "Postgres; rate() of it is batches persisted per second.")
WRITER_LAG = Gauge(
    "venue_writer_lag_seconds", "How long the last events entry the writer stored waited "
    "between the submitter's XADD and its commit.")

# Operator -----------------------------------------------------------------------------

OPERATOR_RECONCILE = Histogram(
    "venue_operator_reconcile_seconds", "One reconcile of a venue's children.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
OPERATOR_AUTOSCALE = Counter(
    "venue_operator_autoscale_decisions", "The autoscaler's decisions that changed the "
    "submitters or their reason, by reason.", ["reason"])


def serve(port: int) -> None:
    """/metrics of this process on `port` (the submitter's, the writer's, the operator's;
    the gateway serves its own route)."""
    from prometheus_client import start_http_server
    start_http_server(port)


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type: of every worker of
    this gateway in multiprocess mode, else of this process."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def multiprocess_directory() -> str:
    """A new directory for the metric files of this gateway's workers. A gateway removes
    its own as it stops; one killed (SIGKILL, the OOM killer) could not, so the
    directories of gateways no longer running are removed first (one with this
    process's pid is of a gateway before it: a container's restarts are each pid 1)."""
    for path in Path(tempfile.gettempdir()).glob(f"{MULTIPROC_DIR_PREFIX}*"):
        pid = path.name[len(MULTIPROC_DIR_PREFIX):].partition("-")[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{MULTIPROC_DIR_PREFIX}{os.getpid()}-")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def worker_exited(pid: int) -> None:
    """Drop a stopped worker's live gauges (its counters keep counting in the sum)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
