"""Order books, as the engine holds them."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, HTTPException, Path, Query, status

from venue.api.parameters import Digits
from venue.api.deps import EnginesDep, VenueDep
from venue.api.engines import EngineUnavailable
from venue.api.models import Book, BookLevel
from venue.enginepb import engine_pb2 as pb

router = APIRouter(prefix="/books", tags=["market data"])

# A book read that takes longer than this has an engine in trouble: say so.
GET_BOOK_TIMEOUT_S = 2.0


@router.get("/{symbol}", summary="An instrument's order book, best prices first",
            responses={404: {"description": "The venue does not trade this symbol"},
                       503: {"description": "The instrument's engine does not answer"}})
async def get_book(symbol: Annotated[str, Path(max_length=32)], venue: VenueDep,
                   engines: EnginesDep,
                   depth: Annotated[Digits, Query(ge=1, le=1000,
                                               description="Price levels per side.")] = 10
                   ) -> Book:
    instrument = venue.by_symbol.get(symbol)
    if instrument is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"symbol {symbol!r} is not traded here")
    partition = venue.partition_of_shard(venue.shard_of(instrument))
    try:
        snapshot = await engines.stub(partition).GetBook(
            pb.BookRequest(instrument_id=instrument.id, depth=depth), timeout=GET_BOOK_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        raise EngineUnavailable(partition, f"GetBook: {error.code().name}") from None

    def levels(side) -> list[BookLevel]:
        return [BookLevel(price=instrument.price_text(level.price),
                          quantity=instrument.quantity_text(level.quantity), orders=level.orders)
                for level in side]

    return Book(symbol=symbol, sequence=snapshot.sequence, bids=levels(snapshot.bids),
                asks=levels(snapshot.asks))
