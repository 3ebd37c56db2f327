"""atheris: venue._reportwire (C) over serialized ReportBatch messages, as the writer, the
submitters and the gateways' market feed read them off Redis (what the engine answered,
or whatever else a damaged or hostile stream holds). A batch that does not decode is a
ValueError, and leaves the writer's rows as they were; any other exception, memory error
or undefined behaviour (the extension is built with ASan and UBSan, `make fuzz`) is a
finding.
"""

import sys

import atheris

from venue._reportwire import batch_timing, market_cut, market_events
from venue.writer.rows import Rows


def test_one_input(data: bytes) -> None:
    for read in (batch_timing, market_events):
        try:
            read(data)
        except ValueError:
            pass
    try:
        _, _, cut = market_cut(data)
    except ValueError:
        pass
    else:  # what the cut keeps reads as it did in the batch (or fails as it did there)
        assert _level_changes_and_trades(cut) == _level_changes_and_trades(data)
    rows = Rows()
    try:
        rows.add_serialized(data, source="fuzz", entry="0-1")
    except ValueError:
        return
    rows.order_values()


def _level_changes_and_trades(data: bytes) -> list | None:
    try:
        return market_events(data)[2]
    except ValueError:
        return None


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
