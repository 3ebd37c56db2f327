"""The engine's command line, as every part that starts one writes it (venue up, the
operator's StatefulSets); the flags are engine/src/server/engine_options.cpp's."""

from __future__ import annotations

from pathlib import Path

from venue.contract.config import VenueConfig


def engine_arguments(venue: VenueConfig, partition: int, listen: str, data_dir: Path) -> list[str]:
    """The engine's command line for `partition`: its address and its instruments' bands."""
    argv = ["--listen", listen, "--partition", str(partition), "--data-dir", str(data_dir)]
    for instrument in venue.instruments_of_partition(partition):
        argv += ["--instrument",
                 f"{instrument.id}:{instrument.min_price_ticks}:{instrument.max_price_ticks}"]
    return argv
