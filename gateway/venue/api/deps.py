"""Dependencies of the routes: the process's clients and the calling account.

Every provider is `async def`: FastAPI runs plain `def` dependencies in a thread pool,
a hop the order path cannot afford.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBearer
from redis.asyncio import Redis

from venue.api.auth import ApiKeyCache
from venue.api.engines import EngineChannels
from venue.api.order_entry import OrderEntry
from venue.api.shard_lag import ShardLag
from venue.contract.config import Settings, VenueConfig
from venue.queue.order_queue import OrderQueue


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_venue(request: Request) -> VenueConfig:
    return request.app.state.venue


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_db(request: Request) -> asyncpg.Pool:
    return request.app.state.db


async def get_order_queue(request: Request) -> OrderQueue:
    return request.app.state.order_queue


class ApiKeyAuth(HTTPBearer):
    """The account id of the request's API key; 401 when the key is missing or unknown.

    One dependency rather than HTTPBearer plus a resolver: FastAPI resolves every
    dependency on every request, and on the order path that shows. Being an HTTPBearer
    keeps the scheme in the OpenAPI document.
    """

    async def __call__(self, request: Request) -> int:  # type: ignore[override]
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key:
            keys: ApiKeyCache = request.app.state.api_keys
            account_id = await keys.account_for(key)
            if account_id is not None:
                return account_id
            detail = "invalid or revoked API key"
        else:
            detail = "a valid API key is required: Authorization: Bearer <key>"
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                            headers={"WWW-Authenticate": "Bearer"})


authenticated_account = ApiKeyAuth(
    scheme_name="ApiKey",
    description="An API key from `venue accounts create NAME`: `Authorization: Bearer tv_...`.")


SettingsDep = Annotated[Settings, Depends(get_settings)]
VenueDep = Annotated[VenueConfig, Depends(get_venue)]
RedisDep = Annotated[Redis, Depends(get_redis)]
DbDep = Annotated[asyncpg.Pool, Depends(get_db)]
OrderQueueDep = Annotated[OrderQueue, Depends(get_order_queue)]
AccountIdDep = Annotated[int, Depends(authenticated_account)]


async def get_order_entry(request: Request) -> OrderEntry:
    return request.app.state.order_entry


async def get_engines(request: Request) -> EngineChannels:
    return request.app.state.engines


OrderEntryDep = Annotated[OrderEntry, Depends(get_order_entry)]
EnginesDep = Annotated[EngineChannels, Depends(get_engines)]


async def get_shard_lag(request: Request) -> ShardLag:
    return request.app.state.shard_lag


# Backpressure: `shard_lag.shard_refusal(shard)` is None, or why and for how long not.
ShardLagDep = Annotated[ShardLag, Depends(get_shard_lag)]
