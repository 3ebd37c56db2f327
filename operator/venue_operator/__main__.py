"""`python -m venue_operator [--namespace NS ...]`: run the operator.

Watches TradingVenues in every namespace (or only the given ones) with the handlers of
venue_operator.handlers; serves kopf's liveness endpoint at $TV_OPERATOR_LIVENESS
(default http://0.0.0.0:8080/healthz). The same as
`kopf run -m venue_operator.handlers --all-namespaces --liveness=...`.
"""

from __future__ import annotations

import argparse
import logging

import kopf
from venue.telemetry import TraceIds


def _quiet_timers(record: logging.LogRecord) -> bool:
    """Drops kopf's "Timer '...' succeeded." line, which the tick would log every second
    for every venue; a timer that fails is still logged, and --verbose keeps them all."""
    message = record.getMessage()
    return not (record.levelno <= logging.INFO and message.startswith("Timer ")
                and message.endswith(" succeeded."))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m venue_operator",
                                     description="Run the tradingvenue operator.")
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable); default: all")
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG")
    args = parser.parse_args(argv)

    # JSON lines, with the trace of the reconcile they were logged in (venue.telemetry).
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIds())
        if not args.verbose:
            handler.addFilter(_quiet_timers)
    from venue_operator import handlers  # registers the handlers with kopf

    kopf.run(clusterwide=not args.namespace, namespaces=args.namespace,
             liveness_endpoint=handlers.SETTINGS.liveness, standalone=True)


if __name__ == "__main__":
    main()
