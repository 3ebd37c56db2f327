"""How instruments map to shards and shards to engine partitions, and what a bad venue is."""

import pytest
from pydantic import ValidationError

from venue.contract.config import Settings, VenueConfig
from venue.contract.instruments import Instrument


def instrument(symbol: str, id: int, **overrides) -> Instrument:
    fields = dict(symbol=symbol, id=id, tick_size="0.5", lot_size="1", min_price="0.5",
                  max_price="1000")
    return Instrument(**(fields | overrides))


def test_every_shard_belongs_to_exactly_one_partition():
    venue = VenueConfig(shards=8, partitions=3, instruments=(instrument("A", 1),))
    owners = [p for s in range(8) for p in range(3) if s in venue.shards_of_partition(p)]
    assert len(owners) == 8


def test_an_instrument_lives_on_the_partition_of_its_shard():
    venue = VenueConfig(shards=4, partitions=2,
                        instruments=(instrument("A", 1), instrument("B", 2), instrument("C", 6)))
    assert [i.symbol for i in venue.instruments_of_partition(0)] == ["B", "C"]
    assert [i.symbol for i in venue.instruments_of_partition(1)] == ["A"]


@pytest.mark.parametrize("change, message", [
    (dict(instruments=(instrument("A", 1), instrument("A", 2))), "symbols must be unique"),
    (dict(instruments=(instrument("A", 1), instrument("B", 1))), "ids must be unique"),
    (dict(shards=2, partitions=3), "partitions must not exceed shards"),
    (dict(instruments=()), "at least one instrument"),
])
def test_a_bad_venue_is_refused_with_the_reason(change, message):
    with pytest.raises(ValidationError, match=message):
        VenueConfig(**change)


def test_a_price_band_off_the_tick_grid_is_refused():
    with pytest.raises(ValidationError, match="max_price 1000.25 is not a multiple of 0.5"):
        instrument("A", 1, max_price="1000.25")


def test_engine_address_is_chosen_by_partition():
    settings = Settings(engines="a:1, b:2")
    assert settings.engine_address(1) == "b:2"
    with pytest.raises(ValueError, match="partition 2 has none"):
        settings.engine_address(2)
