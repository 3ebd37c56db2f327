"""The venue's ConfigMap: venue.json (venue.contract.config.VenueConfig), mounted in every venue pod.

Pods that read it carry its checksum as an annotation, so a change of instruments rolls them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from venue.contract.config import VenueConfig
from venue.contract.instruments import Instrument

from venue_operator.render.labels import Venue, child_name, metadata, venue_name

CONFIG_FILE = "venue.json"
CONFIG_DIR = "/etc/venue"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
_VOLUME = "venue-config"


def venue_config(venue: Venue) -> VenueConfig:
    """The VenueConfig the spec describes; raises pydantic's ValidationError when it is not one.

    The CRD's schema catches most mistakes; this catches what CEL cannot (a price band off
    the tick grid, min above max), with the same rules every venue process applies.
    """
    spec = venue["spec"]
    return VenueConfig(
        name=venue_name(venue),
        shards=spec["shards"],
        partitions=spec["engine"]["partitions"],
        instruments=tuple(
            Instrument(symbol=i["symbol"], id=i["id"], tick_size=i["tickSize"],
                       lot_size=i["lotSize"], min_price=i["minPrice"], max_price=i["maxPrice"],
                       max_quantity=i["maxQuantity"])
            for i in spec["instruments"]),
    )


def config_json(venue: Venue) -> str:
    # Sorted and indented: the same spec always gives the same bytes, hence the same checksum.
    return json.dumps(venue_config(venue).model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


def config_checksum(venue: Venue) -> str:
    return hashlib.sha256(config_json(venue).encode()).hexdigest()


def config_map(venue: Venue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(venue, child_name(venue, "config"), "config"),
        "data": {CONFIG_FILE: config_json(venue)},
    }


def config_volume(venue: Venue) -> dict[str, Any]:
    return {"name": _VOLUME, "configMap": {"name": child_name(venue, "config")}}


def config_mount() -> dict[str, Any]:
    return {"name": _VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}
