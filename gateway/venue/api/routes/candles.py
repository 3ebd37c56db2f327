"""Candles (OHLCV) of an instrument's trades, rolled up as they are read from the minute
and hour candles the writer keeps (candles_1m, candles_1h), never from trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError

from venue.api.deps import DbDep, VenueDep
from venue.api.parameters import Rfc3339
from venue.api.models import Candle
from venue.api.order_rules import error

router = APIRouter(prefix="/candles", tags=["market data"])

Interval = Literal["1m", "5m", "1h", "1d"]
INTERVAL_S: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
DEFAULT_CANDLES = 500  # buckets before `to` when `from` is not given
MAX_CANDLES = 1500  # buckets one request may span

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _rolled_up(table: str, bucket: str) -> str:
    """The `bucket`s (minutes or hours) of `table` in [$2, $3) of instrument $1, rolled up
    into buckets of $4, aligned to the epoch; served by the key (instrument_id, bucket)."""
    return f"""
SELECT date_bin($4, {bucket}, timestamptz '1970-01-01 00:00:00+00') AS time,
       (array_agg(open ORDER BY {bucket}))[1] AS open, max(high) AS high, min(low) AS low,
       (array_agg(close ORDER BY {bucket} DESC))[1] AS close,
       sum(volume) AS volume, sum(trades) AS trades
FROM {table} WHERE instrument_id = $1 AND {bucket} >= $2 AND {bucket} < $3
GROUP BY 1 ORDER BY 1
"""


# What each interval is rolled up from: at most 7,500 minutes (5m), 36,000 hours (1d).
CANDLES_SQL = dict.fromkeys(("1m", "5m"), _rolled_up("candles_1m", "minute")) | dict.fromkeys(
    ("1h", "1d"), _rolled_up("candles_1h", "hour"))

_DESCRIPTION = f"""\
Open, high, low and close prices, volume and trade count of each `interval` of the
instrument's persisted trades. Buckets are aligned to UTC: each starts at a whole
multiple of the interval since 1970-01-01T00:00:00Z (`1d`: at UTC midnight).

The answer holds the buckets whose **start** is in [`from`, `to`), oldest first, each
whole: a bucket `from` falls inside of (a `from` not on a boundary) is left out, and the
bucket `to` falls inside of is in, with every trade it holds (the current bucket, with
the trades so far). A bucket without trades is left out. `to` defaults to now, `from`
to {DEFAULT_CANDLES} intervals before `to`. `from` not before `to`, or a range holding more
than {MAX_CANDLES} bucket starts, gets `422` naming `from` and why.
"""


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(microseconds: int) -> datetime:
    """A time in microseconds since the epoch, held within what a datetime can say (any
    candle's minute is well inside)."""
    if microseconds <= _microseconds(_FIRST):
        return _FIRST
    if microseconds >= _microseconds(_LAST):
        return _LAST
    return _EPOCH + microseconds * _MICROSECOND


def _ceil(microseconds: int, step: int) -> int:
    return -(-microseconds // step) * step


@router.get("/{symbol}", summary="An instrument's candles (OHLCV), oldest first",
            description=_DESCRIPTION,
            responses={404: {"description": "The venue does not trade this symbol"}})
async def get_candles(
        symbol: Annotated[str, Path(max_length=32)], venue: VenueDep, db: DbDep,
        interval: Annotated[Interval, Query(description="The length of a bucket.")],
        start: Annotated[Rfc3339 | None, Query(
            alias="from", description="RFC 3339, with its UTC offset; the first bucket "
                                      "starts here or after.")] = None,
        end: Annotated[Rfc3339 | None, Query(
            alias="to", description="RFC 3339, with its UTC offset; the last bucket starts "
                                    "before it. Now when not given.")] = None,
) -> list[Candle]:
    instrument = venue.by_symbol.get(symbol)
    if instrument is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"symbol {symbol!r} is not traded here")
    step = INTERVAL_S[interval] * 1_000_000
    to_us = _microseconds(end if end is not None else datetime.now(UTC))
    from_us = _microseconds(start) if start is not None else to_us - DEFAULT_CANDLES * step
    if from_us >= to_us:
        raise RequestValidationError([error(
            ("query", "from"), "from_not_before_to",
            f"from must be before to ({_moment(to_us).isoformat()})",
            start.isoformat() if start else None)])
    first, past = _ceil(from_us, step), _ceil(to_us, step)
    if (past - first) // step > MAX_CANDLES:
        raise RequestValidationError([error(
            ("query", "from"), "too_many_candles",
            f"from..to spans {(past - first) // step} {interval} candles; at most "
            f"{MAX_CANDLES} are served at once: ask for a narrower range or a longer interval",
            start.isoformat() if start else None)])
    rows = await db.fetch(CANDLES_SQL[interval], instrument.id, _moment(first), _moment(past),
                          timedelta(seconds=INTERVAL_S[interval]))
    price, quantity = instrument.price_text, instrument.quantity_text
    return [Candle(time=row["time"], open=price(row["open"]), high=price(row["high"]),
                   low=price(row["low"]), close=price(row["close"]),
                   volume=quantity(int(row["volume"])), trades=int(row["trades"]))
            for row in rows]
