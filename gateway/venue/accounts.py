"""Accounts and their API keys.

A key is shown once, when it is issued; the database keeps only its sha256, so a leaked
table names no usable key. An account may hold several keys; a revoked key names nobody.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import asyncpg

KEY_PREFIX = "tv_"
# The account that holds a venue's bootstrap key (Settings.bootstrap_api_key).
BOOTSTRAP_ACCOUNT = "bootstrap"
# An account's name: what the CLI, the logs and key listings show of it.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# token_urlsafe(24) is 32 url-safe characters: 192 random bits.
_KEY_RANDOM_BYTES = 24


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


# The start of a key kept to tell keys apart: the prefix and 4 of its 32 random
# characters (24 random bits: nothing to guess the key from).
HINT_LENGTH = len(KEY_PREFIX) + 4


def key_hint(key: str) -> str:
    return key[:HINT_LENGTH] + "..."


async def issue_key(conn: asyncpg.Connection, account_id: int, name: str = "") -> str:
    """A fresh API key for `account_id`; only its hash (and hint) is stored."""
    key = new_key()
    await conn.execute(
        "INSERT INTO api_keys (key_hash, account_id, name, hint) VALUES ($1, $2, $3, $4)",
        key_hash(key), account_id, name, key_hint(key))
    return key


class UnknownAccount(LookupError):
    pass


async def account_id_of(conn: asyncpg.Connection, name: str) -> int:
    account_id = await conn.fetchval("SELECT account_id FROM accounts WHERE name = $1", name)
    if account_id is None:
        raise UnknownAccount(f"no account {name!r}")
    return account_id


async def create_key(conn: asyncpg.Connection, account: str, name: str = "") -> tuple[int, str]:
    """A new key for the account named `account`: (key id, key)."""
    key = await issue_key(conn, await account_id_of(conn, account), name)
    return await conn.fetchval("SELECT key_id FROM api_keys WHERE key_hash = $1",
                               key_hash(key)), key


async def list_keys(conn: asyncpg.Connection, account: str) -> list[asyncpg.Record]:
    """The account's keys, oldest first: id, name, hint, created, last used, revoked."""
    return await conn.fetch(
        "SELECT key_id, name, hint, created_at, last_used_at, revoked_at FROM api_keys "
        "WHERE account_id = $1 ORDER BY key_id", await account_id_of(conn, account))


async def revoke_key(conn: asyncpg.Connection, account: str, key_id: int) -> bool:
    """Revoke the account's key `key_id`; False when it has no such live key."""
    revoked = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 AND key_id = $2 "
        "AND revoked_at IS NULL RETURNING true", await account_id_of(conn, account), key_id)
    return bool(revoked)


def check_account_name(name: str) -> None:
    """ValueError, worded for the user, unless `name` is a good account name."""
    if not ACCOUNT_NAME.fullmatch(name):
        raise ValueError(f"account name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")


async def create_account(conn: asyncpg.Connection, name: str) -> tuple[int, str]:
    """A new account named `name` and its first API key: (account_id, key)."""
    check_account_name(name)
    async with conn.transaction():
        account_id = await conn.fetchval(
            "INSERT INTO accounts (name) VALUES ($1) RETURNING account_id", name)
        key = await issue_key(conn, account_id)
    return account_id, key


async def register_key(conn: asyncpg.Connection, name: str, key: str,
                       only: bool = False) -> bool:
    """Make `key` a key of the account `name`, creating the account when missing. Idempotent:
    False when the key was registered already. A key revoked earlier stays revoked. With
    `only`, every other key of the account is revoked: a rotated key replaces the last."""
    if not key.strip():
        raise ValueError("an empty API key")
    check_account_name(name)
    async with conn.transaction():
        await conn.execute("INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                           name)
        account_id = await conn.fetchval("SELECT account_id FROM accounts WHERE name = $1", name)
        added = await conn.fetchval(
            "INSERT INTO api_keys (key_hash, account_id, name, hint) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (key_hash) DO NOTHING RETURNING true", key_hash(key), account_id,
            name, key_hint(key))
        if only:
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 "
                "AND key_hash <> $2 AND revoked_at IS NULL", account_id, key_hash(key))
    return bool(added)


async def account_for_key(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> int | None:
    """The account `key` belongs to, or None when the key is unknown or revoked; the key's
    last use is now."""
    return await conn.fetchval(
        "UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 AND revoked_at IS NULL "
        "RETURNING account_id", key_hash(key))
