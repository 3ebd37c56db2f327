"""The latest trades of an instrument, from the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from venue.api.parameters import Digits
from venue.api.deps import DbDep, VenueDep
from venue.api.models import Trade

router = APIRouter(prefix="/trades", tags=["market data"])

# Served by trades_instrument_time (instrument_id, engine_time DESC).
_LATEST = ("SELECT trade_id, sequence, price, quantity, aggressor_side, engine_time "
           "FROM trades WHERE instrument_id = $1 "
           "ORDER BY engine_time DESC, sequence DESC LIMIT $2")


@router.get("/{symbol}", summary="An instrument's latest trades, newest first",
            description="Trades the database writer has persisted: a fill appears here "
                        "once written, a moment after the engine made it.",
            responses={404: {"description": "The venue does not trade this symbol"}})
async def latest_trades(symbol: Annotated[str, Path(max_length=32)], venue: VenueDep,
                        db: DbDep, limit: Annotated[Digits, Query(ge=1, le=1000)] = 100
                        ) -> list[Trade]:
    instrument = venue.by_symbol.get(symbol)
    if instrument is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"symbol {symbol!r} is not traded here")
    rows = await db.fetch(_LATEST, instrument.id, limit)
    return [Trade(trade_id=str(row["trade_id"]), price=instrument.price_text(row["price"]),
                  quantity=instrument.quantity_text(row["quantity"]),
                  aggressor_side=row["aggressor_side"], time=row["engine_time"],
                  sequence=row["sequence"]) for row in rows]
