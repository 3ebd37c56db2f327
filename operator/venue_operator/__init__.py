"""The tradingvenue operator: a TradingVenue resource in, a running venue out.

render/      pure functions, venue -> one child manifest each (no API calls)
autoscale    the submitters' scaling decision, pure, over time
conditions   metav1.Condition-shaped status from the children's real state
queue_depth  what it reads of a venue's Redis: queue depth, the parts' health, dead letters
kube         the one client that talks to the API server (server-side apply)
reconcile    renders and applies a venue's children; restores drift
handlers     the kopf layer: what reacts to which event

Run with `python -m venue_operator` (see __main__).
"""

GROUP = "tradingvenue.io"
VERSION = "v1alpha1"
PLURAL = "tradingvenues"
KIND = "TradingVenue"
API_VERSION = f"{GROUP}/{VERSION}"
FIELD_MANAGER = "tradingvenue-operator"
