"""Accounts and their API keys.

A key is shown once, when it is issued; the database keeps only its sha256, so a leaked
table names no usable key. An account may hold several keys; a revoked key names nobody.
"""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

KEY_PREFIX = "tv_"
# The account that holds a venue's bootstrap key (Settings.bootstrap_api_key).
BOOTSTRAP_ACCOUNT = "bootstrap"
# token_urlsafe(24) is 32 url-safe characters: 192 random bits.
_KEY_RANDOM_BYTES = 24


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


async def issue_key(conn: asyncpg.Connection, account_id: int) -> str:
    """A fresh API key for `account_id`; only its hash is stored."""
    key = new_key()
    await conn.execute("INSERT INTO api_keys (key_hash, account_id) VALUES ($1, $2)",
                       key_hash(key), account_id)
    return key


async def create_account(conn: asyncpg.Connection, name: str) -> tuple[int, str]:
    """A new account named `name` and its first API key: (account_id, key)."""
    async with conn.transaction():
        account_id = await conn.fetchval(
            "INSERT INTO accounts (name) VALUES ($1) RETURNING account_id", name)
        key = await issue_key(conn, account_id)
    return account_id, key


async def register_key(conn: asyncpg.Connection, name: str, key: str) -> bool:
    """Make `key` a key of the account `name`, creating the account when missing. Idempotent:
    False when the key was registered already. A key revoked earlier stays revoked."""
    if not key.strip():
        raise ValueError("an empty API key")
    async with conn.transaction():
        await conn.execute("INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                           name)
        account_id = await conn.fetchval("SELECT account_id FROM accounts WHERE name = $1", name)
        added = await conn.fetchval(
            "INSERT INTO api_keys (key_hash, account_id) VALUES ($1, $2) "
            "ON CONFLICT (key_hash) DO NOTHING RETURNING true", key_hash(key), account_id)
    return bool(added)


async def account_for_key(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> int | None:
    """The account `key` belongs to, or None when the key is unknown or revoked."""
    return await conn.fetchval(
        "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash(key))
