"""API keys at rest: only a keyed hash of a key is stored."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import make_key


async def test_only_a_keyed_hash_of_a_key_is_stored(dsn: str, pool: asyncpg.Pool[Any]) -> None:
    key = await make_key(dsn, ("write",), name="secretive")
    dump = await pool.fetch(
        "SELECT row_to_json(k)::text FROM api_keys k"
        " UNION ALL SELECT encode(key_hash, 'escape') FROM api_keys"
        " UNION ALL SELECT encode(key_hash, 'hex') FROM api_keys"
    )
    assert dump
    assert all(key not in row[0] and key.removeprefix("lg_") not in row[0] for row in dump)
