"""`python -m venue_operator [--namespace NS ...]`: run the operator.

Watches TradingVenues in every namespace (or only the given ones) with the handlers of
venue_operator.handlers; serves kopf's liveness endpoint at $TV_OPERATOR_LIVENESS
(default http://0.0.0.0:8080/healthz). The same as
`kopf run -m venue_operator.handlers --all-namespaces --liveness=...`.
"""

from __future__ import annotations

import argparse

import kopf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m venue_operator",
                                     description="Run the tradingvenue operator.")
    parser.add_argument("-n", "--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable); default: all")
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG")
    args = parser.parse_args(argv)

    kopf.configure(verbose=args.verbose)
    from venue_operator import handlers  # registers the handlers with kopf

    kopf.run(clusterwide=not args.namespace, namespaces=args.namespace,
             liveness_endpoint=handlers.SETTINGS.liveness, standalone=True)


if __name__ == "__main__":
    main()
