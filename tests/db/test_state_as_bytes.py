"""Migration 0014: incidents' state goes from jsonb to bytea; rows written before read alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from alembic import command

from service.incidents.domain import IncidentState, stream_name
from service.log.database import connect
from service.log.migrations import alembic_config
from service.projections.incident_list import IncidentFilter, list_incidents, load_states
from tests.conftest import migrated_to

AT = datetime(2022, 4, 19, 9, 30, tzinfo=UTC)


@pytest.fixture
async def at_0012(server_dsn: str) -> AsyncIterator[str]:
    """A database migrated up to 0012: `incidents.state` is jsonb."""
    async with migrated_to(server_dsn, "0012") as dsn:
        yield dsn


def old_state(expelled: str, count_range: list[int | None] | None) -> dict[str, Any]:
    """A state as the projector of 0012 encoded it: every field present, defaults too.

    The summary is not ASCII: the text must survive the conversion.
    """
    source = {"outlet": "AFP", "url": "https://example.org/a", "quoted": None,
              "published_at": None}  # fmt: skip
    content = {"kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU",
               "expelled": expelled, "count": 21, "count_range": count_range,
               "joint_expelling": [], "joint_expelled": ["LU"], "deadline": None,
               "grounds": None, "responds_to": [], "summary": "Zwölf «Diplomaten»",
               "sources": [source]}  # fmt: skip
    return {"id": str(uuid.uuid4()), "incident": content, "status": "active", "version": 1,
            "reported_at": AT, "updated_at": AT, "corrections": [],
            "retraction": None}  # fmt: skip


# As the projector of 0012 wrote a row: the state as jsonb, every field present.
OLD_ROW = """
INSERT INTO incidents (id, kind, status, occurred_on, actors, version, position, state)
VALUES ($1, 'expulsion', 'active', '2022-04-19', $2, 1, $3, $4::text::jsonb)
"""


async def test_the_upgrade_keeps_every_state_as_it_was(at_0012: str) -> None:
    old = [old_state("BE", [12, 21]), old_state("NL", None)]
    states = [msgspec.convert(state, IncidentState, strict=False) for state in old]
    conn = await connect(at_0012)
    try:
        for position, (state, expelled) in enumerate(zip(old, ["BE", "NL"], strict=True), 1):
            actors = ["LU", "RU", expelled]
            encoded = msgspec.json.encode(state).decode()
            await conn.execute(OLD_ROW, uuid.UUID(state["id"]), actors, position, encoded)
    finally:
        await conn.close()
    command.upgrade(alembic_config(at_0012), "head")
    conn = await connect(at_0012)
    try:
        column = "SELECT data_type FROM information_schema.columns WHERE column_name = 'state'"
        assert await conn.fetchval(column + " AND table_name = 'incidents'") == "bytea"
        loaded = await load_states(conn, [state.id for state in states])
        assert loaded == {stream_name(state.id): state for state in states}
        listed, _ = await list_incidents(conn, IncidentFilter(country="LU"), None, 10)
        assert {state.id: state for state in listed} == {state.id: state for state in states}
    finally:
        await conn.close()
    command.downgrade(alembic_config(at_0012), "0012")
    conn = await connect(at_0012)
    try:
        back = await conn.fetch("SELECT state FROM incidents ORDER BY position")
        assert [msgspec.json.decode(row[0], type=IncidentState) for row in back] == states
    finally:
        await conn.close()
