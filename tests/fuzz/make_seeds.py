"""Writes the seed corpora of the Python fuzz targets (tests/fuzz/corpus/) and of the
engine's command-batch target (engine/fuzz/corpus/command_batch), from the tests' own
generators and the venue's encoders; the engine's journal and snapshot seeds come from
its fuzz_seeds program (`make fuzz-seeds` runs both). Run again when a format changes.
"""

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_orderwire import VENUE, body_of, order  # noqa: E402
from test_reportwire import random_batch  # noqa: E402

from venue.api.commands import encode_cancel, encode_new_order, encode_replace  # noqa: E402
from venue.api.order_rules import new_order  # noqa: E402
from venue.contract.wire import command_batch, source_fields, traceparent_field  # noqa: E402


def write(directory: Path, seeds: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / name).write_bytes(data)


def orderwire_seeds() -> dict[str, bytes]:
    return {
        "one.json": body_of(order()),
        "mixed.json": body_of(
            order(), order(symbol="ETH-USD", side="sell", price="2000.05", quantity="1.5",
                           clientOrderId="e:2"),
            order(symbol="AAPL", type="market", price=None, quantity="3", clientOrderId="a3",
                  timeInForce="ioc"),
            order(symbol="ODD.LOT", price="125", quantity="0.5", clientOrderId="o4",
                  timeInForce="fok", postOnly=False)),
        "spaced.json": b'{ "orders" : [ {"clientOrderId":"s1", "quantity":"1", "price":'
                       b'"10.00","side":"buy","symbol":"BTC-USD"} ] }',
        "rejected.json": body_of(order(price="100.255")),
    }


def reportwire_seeds() -> dict[str, bytes]:
    rng = random.Random(7)
    return {f"batch-{i}.pb": random_batch(rng, i % 3, 1000 * i, [1, 2, 3, 99]
                                          ).SerializeToString() for i in range(6)}


def command_batch_seeds() -> dict[str, bytes]:
    """CommandBatches as a submitter sends them: orders the rules checked, encoded by the
    gateway's encoders, grouped by stream entry."""
    rng = random.Random(11)
    commands = []
    for serial in range(1, 41):
        checked = new_order(VENUE, order(
            symbol="BTC-USD", side=rng.choice(["buy", "sell"]),
            price=f"{rng.randint(490, 510) / 100:.2f}", quantity="0.5",
            clientOrderId=f"c{serial}"))
        commands.append(encode_new_order(
            checked.order, order_id=serial, client_order_id=checked.order.client_order_id,
            account_id=1 + serial % 3, instrument_id=1, price_ticks=checked.price_ticks,
            quantity_lots=checked.quantity_lots))
        if serial % 5 == 0:
            commands.append(encode_cancel(order_id=serial - 2, account_id=1, instrument_id=1))
        if serial % 7 == 0:
            commands.append(encode_replace(order_id=serial - 1, account_id=1, instrument_id=1,
                                           price_ticks=500, quantity_lots=2))
    trace = traceparent_field(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    seeds = {}
    for size in (1, 8, len(commands)):
        entries = [(trace, source_fields(0, 1_700_000_000_000 + i, 0),
                    commands[i:i + 4]) for i in range(0, size, 4)]
        seeds[f"batch-{size}.pb"] = command_batch(size, entries)
    return seeds


def main() -> None:
    write(ROOT / "tests" / "fuzz" / "corpus" / "orderwire", orderwire_seeds())
    write(ROOT / "tests" / "fuzz" / "corpus" / "reportwire", reportwire_seeds())
    write(ROOT / "engine" / "fuzz" / "corpus" / "command_batch", command_batch_seeds())


if __name__ == "__main__":
    main()
