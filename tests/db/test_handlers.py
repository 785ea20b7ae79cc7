"""The write handlers without HTTP: the incident and its position back, refusals as facts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from service.incidents import handlers
from service.incidents.catalogue import Report, Source
from service.incidents.domain import Correction, Retraction
from service.incidents.errors import (
    IdempotencyKeyReused,
    IncidentAlreadyRetracted,
    IncidentExists,
    IncidentNotFound,
    StreamChanged,
)
from service.log.envelope import Metadata
from service.log.group_commit import GroupCommit
from tests.factories import expulsion


@pytest.fixture
async def appends(pool: asyncpg.Pool[Any]) -> AsyncIterator[GroupCommit]:
    """A running group commit on the test's pool."""
    running = GroupCommit(pool)
    running.start()
    yield running
    await running.stop()


def meta(idempotency_key: str | None = None, request_hash: str | None = None) -> Metadata:
    """Metadata as a request of the tests would record."""
    return Metadata(
        actor="tests",
        correlation_id="handlers",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


def report(**changes: Any) -> Report:
    """A valid expulsion report."""
    made: Report = msgspec.convert(expulsion(**changes), Report)
    return made


async def test_a_report_answers_the_incident_and_its_position(
    pool: asyncpg.Pool[Any], appends: GroupCommit
) -> None:
    done = await handlers.report(pool, appends, report(), meta())
    assert (done.state.version, done.state.status, done.position) == (1, "active", 1)
    assert await handlers.load(pool, done.state.id) == done


async def test_a_stale_expected_version_is_stream_changed(
    pool: asyncpg.Pool[Any], appends: GroupCommit
) -> None:
    incident_id = (await handlers.report(pool, appends, report(), meta())).state.id
    cited = Source(outlet="Reuters", url="https://example.org/one")
    await handlers.add_source(pool, appends, incident_id, cited, meta(), frozenset({1}))
    with pytest.raises(StreamChanged) as stale:
        await handlers.correct(
            pool, appends, incident_id, Correction(changes={"count": 16}), meta(), frozenset({1})
        )
    assert (stale.value.expected, stale.value.actual) == (frozenset({1}), 2)


async def test_an_unknown_incident_is_not_found(
    pool: asyncpg.Pool[Any], appends: GroupCommit
) -> None:
    with pytest.raises(IncidentNotFound):
        await handlers.retract(pool, appends, uuid.uuid4(), Retraction(), meta())


async def test_a_client_id_reported_twice_with_other_content_exists(
    pool: asyncpg.Pool[Any], appends: GroupCommit
) -> None:
    incident_id = str(uuid.uuid4())
    first = await handlers.report(pool, appends, report(id=incident_id), meta())
    again = await handlers.report(pool, appends, report(id=incident_id), meta())
    assert again == first
    with pytest.raises(IncidentExists) as exists:
        await handlers.report(pool, appends, report(id=incident_id, count=16), meta())
    assert exists.value.other_content


async def test_a_key_replays_its_answer_and_refuses_another_request(
    pool: asyncpg.Pool[Any], appends: GroupCommit
) -> None:
    incident_id = (await handlers.report(pool, appends, report(), meta())).state.id
    keyed = meta("retract-once", request_hash="a")
    retracted = await handlers.retract(pool, appends, incident_id, Retraction(), keyed)
    again = await handlers.retract(pool, appends, incident_id, Retraction(), keyed)
    assert again == retracted
    other = meta("retract-once", request_hash="b")
    with pytest.raises(IdempotencyKeyReused):
        await handlers.retract(pool, appends, incident_id, Retraction(), other)
    with pytest.raises(IncidentAlreadyRetracted):
        await handlers.retract(pool, appends, incident_id, Retraction(), meta())
