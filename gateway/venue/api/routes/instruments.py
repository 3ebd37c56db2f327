"""What the venue trades."""

from __future__ import annotations

from fastapi import APIRouter

from venue.api.deps import VenueDep
from venue.api.models import InstrumentView

router = APIRouter(prefix="/instruments", tags=["instruments"])


@router.get("", summary="List the venue's instruments")
async def list_instruments(venue: VenueDep) -> list[InstrumentView]:
    return [InstrumentView.of(instrument) for instrument in venue.instruments]
