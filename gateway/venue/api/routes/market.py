"""The public market-data WebSocket (see venue.market.socket for its messages)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from venue.market.socket import MarketSocket

router = APIRouter()


@router.websocket("/market", name="market_socket")
async def market_socket(websocket: WebSocket) -> None:
    state = websocket.app.state
    await MarketSocket(websocket, state.market_feed, state.venue).serve()
