"""atheris: venue._reportwire (C) over serialized ReportBatch messages, as the writer and
the submitters read them off Redis and the gateways' market feed off the engine (what the
engine answered, or whatever else a damaged or hostile stream holds). A batch that does not decode is a
ValueError, and leaves the writer's rows as they were; any other exception, memory error
or undefined behaviour (the extension is built with ASan and UBSan, `make fuzz`) is a
finding.
"""

import sys

import atheris

from venue._reportwire import batch_timing, market_events
from venue.writer.rows import Rows


def test_one_input(data: bytes) -> None:
    for read in (batch_timing, market_events):
        try:
            read(data)
        except ValueError:
            pass
    rows = Rows()
    try:
        rows.add_serialized(data, source="fuzz", entry="0-1")
    except ValueError:
        return
    rows.order_values()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
