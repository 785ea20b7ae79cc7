"""The write commands on incidents: load, decide (service/incidents/domain.py), append.

Each takes the pool it reads with and the group commit it appends through, and
answers the incident as the command leaves it with the log position of its last
event; refusals are the facts of service/incidents/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from service.incidents.catalogue import Report, Source, new_event
from service.incidents.content import actors
from service.incidents.domain import (
    Correction,
    IncidentState,
    Retraction,
    decide_correction,
    decide_report,
    decide_retraction,
    decide_source,
    fold,
    keyed_event_id,
    report_event,
    reported,
    stream_name,
    transition,
)
from service.incidents.errors import (
    IdempotencyKeyReused,
    IncidentExists,
    IncidentNotFound,
    KeptChanging,
    StreamChanged,
)
from service.log.envelope import Metadata, RecordedEvent
from service.log.group_commit import GroupCommit
from service.log.store import EventIdReused, WrongExpectedVersion, find_event, read_stream

_RETRIES = 3


class IncidentAt(msgspec.Struct, frozen=True):
    """An incident and the log position of the last event it was folded from."""

    state: IncidentState
    position: int


async def load_events(
    pool: asyncpg.Pool[Any], incident_id: UUID, up_to_version: int | None = None
) -> list[RecordedEvent]:
    """The incident's events, oldest first; IncidentNotFound if there are none."""
    async with pool.acquire() as conn:
        events = await read_stream(conn, stream_name(incident_id), up_to_version)
    if not events:
        raise IncidentNotFound(incident_id)
    return events


async def load(
    pool: asyncpg.Pool[Any], incident_id: UUID, up_to_version: int | None = None
) -> IncidentAt:
    """The incident folded from its stream (up to `up_to_version`); IncidentNotFound if none."""
    events = await load_events(pool, incident_id, up_to_version)
    state = fold(events)
    assert state is not None  # a non-empty stream folds to a state
    return IncidentAt(state, events[-1].position)


async def report(
    pool: asyncpg.Pool[Any], appends: GroupCommit, report: Report, meta: Metadata
) -> IncidentAt:
    """Append a new incident; a retry (same idempotency key or id, same report) changes nothing."""
    incident = decide_report(report)
    incident_id, event = report_event(report.id, incident, meta)
    try:
        appended = await appends.append(stream_name(incident_id), 0, [event])
    except WrongExpectedVersion:
        raise IncidentExists(incident_id) from None
    except EventIdReused:
        raise _reused(meta.idempotency_key, incident_id) from None
    position = appended.positions[-1]
    if appended.duplicate:
        earlier = await load(pool, incident_id, appended.versions[-1])
        return IncidentAt(earlier.state, position)
    state = reported(incident_id, incident, appended.versions[-1], appended.recorded_at)
    return IncidentAt(state, position)


def _reused(idempotency_key: str | None, incident_id: UUID) -> Exception:
    if idempotency_key is not None:
        return IdempotencyKeyReused(incident_id)
    return IncidentExists(incident_id, other_content=True)


class Change(msgspec.Struct, frozen=True):
    """A command on an existing incident: what to decide and how to record it."""

    incident_id: UUID
    event_type: str
    decide: Callable[[IncidentState], msgspec.Struct | None]
    meta: Metadata
    expected: frozenset[int] | None  # the versions the caller accepts (None: any)


async def correct(
    pool: asyncpg.Pool[Any],
    appends: GroupCommit,
    incident_id: UUID,
    correction: Correction,
    meta: Metadata,
    expected: frozenset[int] | None = None,
) -> IncidentAt:
    """Correct an incident; the corrected incident is validated as a whole."""
    decide = partial(decide_correction, correction=correction)
    return await apply_change(
        pool, appends, Change(incident_id, "incident.corrected", decide, meta, expected)
    )


async def retract(
    pool: asyncpg.Pool[Any],
    appends: GroupCommit,
    incident_id: UUID,
    retraction: Retraction,
    meta: Metadata,
    expected: frozenset[int] | None = None,
) -> IncidentAt:
    """Retract an incident (once)."""
    decide = partial(decide_retraction, retraction=retraction)
    return await apply_change(
        pool, appends, Change(incident_id, "incident.retracted", decide, meta, expected)
    )


async def add_source(
    pool: asyncpg.Pool[Any],
    appends: GroupCommit,
    incident_id: UUID,
    source: Source,
    meta: Metadata,
    expected: frozenset[int] | None = None,
) -> IncidentAt:
    """Cite another source; citing one the incident already has changes nothing."""
    decide = partial(decide_source, source=source)
    return await apply_change(
        pool, appends, Change(incident_id, "incident.source_added", decide, meta, expected)
    )


async def apply_change(pool: asyncpg.Pool[Any], appends: GroupCommit, change: Change) -> IncidentAt:
    """Decide against the current incident and append; expected versions and retries honoured."""
    key = change.meta.idempotency_key
    event_id = keyed_event_id(change.meta.actor, key) if key else uuid4()
    if key is not None and (replayed := await _replay(pool, change, event_id)):
        return replayed
    for _ in range(_RETRIES):
        current = await load(pool, change.incident_id)
        state = current.state
        if change.expected is not None and state.version not in change.expected:
            raise StreamChanged(change.expected, state.version)
        data = change.decide(state)
        if data is None:  # nothing to record: already so
            return current
        try:
            return await _append(pool, appends, change, state, data, event_id)
        except WrongExpectedVersion as exc:
            if change.expected is not None:
                raise StreamChanged(change.expected, exc.actual) from None
        except EventIdReused:
            raise _reused(key, change.incident_id) from None
    raise KeptChanging(change.incident_id)


class _Asked(msgspec.Struct):
    request_hash: str | None = None


async def _replay(pool: asyncpg.Pool[Any], change: Change, event_id: UUID) -> IncidentAt | None:
    async with pool.acquire() as conn:
        found = await find_event(conn, event_id)
    if found is None:
        return None
    asked = msgspec.json.decode(found.metadata, type=_Asked).request_hash
    same = (found.stream, found.type, asked) == (
        stream_name(change.incident_id),
        change.event_type,
        change.meta.request_hash,
    )
    if not same:
        raise _reused(change.meta.idempotency_key, change.incident_id)
    return await load(pool, change.incident_id, found.version)


async def _append(
    pool: asyncpg.Pool[Any],
    appends: GroupCommit,
    change: Change,
    state: IncidentState,
    data: msgspec.Struct,
    event_id: UUID,
) -> IncidentAt:
    at_hand = transition(state, change.event_type, data, state.version + 1, state.updated_at)
    countries = tuple(sorted({*actors(state.incident), *actors(at_hand.incident)}))
    occurred_on = at_hand.incident.occurred_on
    event = new_event(event_id, change.event_type, data, change.meta, occurred_on, countries)
    # The log checks the version decided on: a change since is StreamChanged when expected.
    appended = await appends.append(stream_name(state.id), state.version, [event])
    if appended.duplicate:  # a concurrent retry with the same key got there first
        replayed = await load(pool, state.id, appended.versions[-1])
        return IncidentAt(replayed.state, appended.positions[-1])
    after = transition(state, change.event_type, data, appended.versions[-1], appended.recorded_at)
    return IncidentAt(after, appended.positions[-1])
