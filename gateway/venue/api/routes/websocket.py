"""The order-entry WebSocket (see venue.api.order_socket for its messages)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from venue.api.order_socket import OrderSocket
from venue.api.parameters import refused_query

router = APIRouter()


@router.websocket("/ws", name="order_socket")
async def order_socket(websocket: WebSocket) -> None:
    if await refused_query(websocket):
        return
    state = websocket.app.state
    await OrderSocket(websocket, state.order_entry, state.report_feed, state.api_keys).serve()
