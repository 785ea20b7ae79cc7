"""Version 1 expulsions already in a log read, project and migrate unchanged.

Version 2 of expulsion.reported made `count` optional, let a range be open and
added joint parties; every version 1 event is a valid version 2 one. The events
below are written as version 1 wrote them, byte for byte, not through today's code.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from alembic import command

from service.incidents.catalogue import Expulsion
from service.incidents.domain import fold, stream_name
from service.log.database import connect
from service.log.envelope import NewEvent
from service.log.migrations import alembic_config
from service.log.store import append, head_position, read_all, read_stream
from service.projections.projector import project_batch
from service.projections.standings import At, standings
from tests.conftest import migrated_to

BE_21 = uuid.uuid4()
NL_15 = uuid.uuid4()
SOURCE = {"outlet": "AFP", "url": None, "quoted": None, "published_at": None}


def v1_expulsion(expelled: str, count: int, count_range: list[int] | None) -> dict[str, Any]:
    """An expulsion as version 1 encoded it: every field, count required, no joint parties."""
    return {"kind": "expulsion", "occurred_on": "2022-04-19", "expelling": "RU",
            "expelled": expelled, "count": count, "count_range": count_range, "deadline": None,
            "grounds": None, "responds_to": [], "summary": None, "sources": [SOURCE]}  # fmt: skip


def v1_event(event_type: str, data: dict[str, Any], countries: tuple[str, ...]) -> NewEvent:
    return NewEvent(
        id=uuid.uuid4(),
        type=event_type,
        schema_version=1,
        data=msgspec.Raw(msgspec.json.encode(data)),
        occurred_on=None,
        countries=countries,
    )


async def write_version_1_log(conn: Any) -> None:
    """RU expels 21 Belgians (12 to 21), and 15 Dutch, corrected to 14 (10 to 20)."""
    # Expecting any version (None), not 0: a database at 0010 lacks append_new_streams.
    await append(conn, stream_name(BE_21), None, [
        v1_event("expulsion.reported", v1_expulsion("BE", 21, [12, 21]), ("BE", "RU")),
    ])  # fmt: skip
    await append(conn, stream_name(NL_15), None, [
        v1_event("expulsion.reported", v1_expulsion("NL", 15, None), ("NL", "RU")),
    ])  # fmt: skip
    corrected = {"changes": {"count": 14, "count_range": [10, 20]}, "note": None,
                 "incident": v1_expulsion("NL", 14, [10, 20])}  # fmt: skip
    await append(conn, stream_name(NL_15), 1, [
        v1_event("incident.corrected", corrected, ("NL", "RU")),
    ])  # fmt: skip


async def russia(conn: Any) -> dict[str, Any]:
    [row] = await standings(conn, At(await head_position(conn)), "RU")
    return row


async def test_version_1_events_read_and_project_as_they_always_did(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await write_version_1_log(conn)
        assert {event.schema_version for event in await read_all(conn, 0, 10)} == {1}
        state = fold(await read_stream(conn, stream_name(BE_21)))
        assert state is not None
        assert isinstance(state.incident, Expulsion)
        assert (state.incident.count, state.incident.count_range) == (21, (12, 21))
        assert (state.incident.joint_expelling, state.incident.joint_expelled) == ((), ())
        while await project_batch(conn, limit=10) < await head_position(conn):
            pass
        ru = await russia(conn)
        assert ru["expelled_foreign_diplomats"] == 21 + 14
        low_high = (ru["expelled_foreign_diplomats_low"], ru["expelled_foreign_diplomats_high"])
        assert low_high == (12 + 10, 21 + 20)
        assert ru["disputed_incidents"] == 2
    finally:
        await conn.close()


@pytest.fixture
async def at_0010(server_dsn: str) -> AsyncIterator[str]:
    """A database migrated up to 0010: incident versions without ranges or joint parties."""
    async with migrated_to(server_dsn, "0010") as dsn:
        yield dsn


# The rows the projector of 0010 wrote for the log above: one per content.
OLD_ROWS = """
INSERT INTO incident_versions (incident_id, valid_from, valid_to, reported_position, kind,
                               occurred_on, initiator, recipient, count, actors)
VALUES ($1, 1, NULL, 1, 'expulsion', '2022-04-19', 'RU', 'BE', 21, '{BE,RU}'),
       ($2, 2, 3, 2, 'expulsion', '2022-04-19', 'RU', 'NL', 15, '{NL,RU}'),
       ($2, 3, NULL, 2, 'expulsion', '2022-04-19', 'RU', 'NL', 14, '{NL,RU}')
"""


async def test_the_upgrade_keeps_the_ranges_version_1_reports_gave(at_0010: str) -> None:
    conn = await connect(at_0010)
    try:
        await write_version_1_log(conn)
        await conn.execute(OLD_ROWS, BE_21, NL_15)
    finally:
        await conn.close()
    command.upgrade(alembic_config(at_0010), "head")
    conn = await connect(at_0010)
    try:
        ranges = await conn.fetch(
            "SELECT count_low, count_high FROM incident_versions ORDER BY valid_from"
        )
        assert [tuple(row) for row in ranges] == [(12, 21), (None, None), (10, 20)]
        ru = await russia(conn)
        assert (ru["expelled_foreign_diplomats_low"], ru["expelled_foreign_diplomats_high"]) == (
            22,
            41,
        )
    finally:
        await conn.close()
