"""Random reports, corrections and retractions: live, rebuilt and naive standings agree.

The naive fold below is written for the test alone: it replays the log in
Python for a position N and a date D, and counts as API.md says.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import asyncpg
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.incidents.catalogue import Report, new_event
from service.incidents.content import actors
from service.incidents.domain import (
    Correction,
    IncidentAlreadyRetracted,
    Retraction,
    decide_correction,
    decide_report,
    decide_retraction,
    fold,
    report_event,
    stream_name,
)
from service.incidents.errors import Invalid as InvalidInput
from service.log.database import connect
from service.log.envelope import Metadata
from service.log.store import append, head_position, read_all, read_stream
from service.projections.projector import project_batch
from service.projections.rebuild import rebuild
from service.projections.standings import At, standings
from tests.conftest import with_database

ACTORS = ["FR", "DE", "IT", "PL"]
PLACES = [{"name": "Aville", "geonames_id": 11, "country": "UA"}, {"name": "Bton", "country": "UA"}]
START = date(2023, 1, 1)
META = Metadata(actor="property", correlation_id="property")
SRC = [{"outlet": "Wire"}]

days = st.integers(0, 30)
pairs = st.permutations(ACTORS).map(lambda p: (p[0], p[1]))
expulsions = st.tuples(st.just("expulsion"), pairs, st.integers(1, 20), days)
sanctions = st.tuples(st.just("sanctions_round"), pairs, st.integers(1, 3), days)
towns = st.tuples(
    st.just("territorial_control"),
    st.tuples(
        st.sampled_from([*ACTORS, "contested"]), st.one_of(st.none(), st.sampled_from(ACTORS))
    ),
    st.integers(0, len(PLACES) - 1),
    days,
)
corrections = st.tuples(st.just("correct"), st.integers(0, 50), st.integers(1, 20), days)
retractions = st.tuples(st.just("retract"), st.integers(0, 50), st.just(0), st.just(0))
steps = st.lists(
    st.one_of(expulsions, sanctions, towns, towns, corrections, retractions),
    min_size=4,
    max_size=25,
)


def _body(step: tuple[Any, ...]) -> dict[str, Any]:
    kind, roles, number, day = step
    on = (START + timedelta(days=day)).isoformat()
    if kind == "expulsion":
        return {"kind": kind, "occurred_on": on, "expelling": roles[0], "expelled": roles[1],
                "count": number, "sources": SRC}  # fmt: skip
    if kind == "sanctions_round":
        return {"kind": kind, "occurred_on": on, "imposing": roles[0], "target": roles[1],
                "round": number, "sources": SRC}  # fmt: skip
    body = {"kind": kind, "occurred_on": on, "place": PLACES[number], "controller": roles[0],
            "sources": SRC}  # fmt: skip
    return body | ({"previous_controller": roles[1]} if roles[1] else {})


async def _play(conn: Any, plan: list[tuple[Any, ...]]) -> None:
    ids: list[uuid.UUID] = []
    for step in plan:
        if step[0] in ("correct", "retract"):
            if ids:
                await _change(conn, ids[step[1] % len(ids)], step)
            continue
        try:
            incident = decide_report(msgspec.convert(_body(step), Report))
        except InvalidInput:  # e.g. controller == previous_controller
            continue
        incident_id, event = report_event(None, incident, META)
        await append(conn, stream_name(incident_id), 0, [event])
        ids.append(incident_id)


async def _change(conn: Any, incident_id: uuid.UUID, step: tuple[Any, ...]) -> None:
    state = fold(await read_stream(conn, stream_name(incident_id)))
    assert state is not None
    on = (START + timedelta(days=step[3])).isoformat()
    try:
        if step[0] == "retract":
            data: Any = decide_retraction(state, Retraction(note="random"))
            kind = "incident.retracted"
        else:
            changes: dict[str, Any] = {"occurred_on": on}
            if state.incident.__struct_config__.tag == "expulsion":
                changes["count"] = step[2]
            data = decide_correction(state, Correction(changes=changes))
            kind = "incident.corrected"
    except (InvalidInput, IncidentAlreadyRetracted):
        return
    occurred = getattr(data, "incident", state.incident).occurred_on
    event = new_event(uuid.uuid4(), kind, data, META, occurred, actors(state.incident))
    await append(conn, stream_name(incident_id), state.version, [event])


def naive(events: list[Any], position: int, as_of: date | None) -> dict[str, tuple[Any, ...]]:
    """Standings by replaying the log up to `position`, counting what occurred by `as_of`."""
    current: dict[str, tuple[dict[str, Any], int] | None] = {}
    for event in events:
        if event.position > position:
            break
        data = msgspec.json.decode(event.data)
        if event.type.endswith(".reported"):
            current[event.stream] = (data, event.position)
        elif event.type == "incident.corrected":
            previous = current[event.stream]
            assert previous is not None
            current[event.stream] = (data["incident"], previous[1])
        elif event.type == "incident.retracted":
            current[event.stream] = None
    valid = [
        v
        for v in current.values()
        if v and (as_of is None or date.fromisoformat(v[0]["occurred_on"]) <= as_of)
    ]
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * 9)
    last: dict[str, str] = {}
    for content, _ in valid:
        _count(content, counts, last)
    _count_towns([v for v in valid if v[0]["kind"] == "territorial_control"], counts)
    return {code: (*numbers, last.get(code)) for code, numbers in counts.items()}


def _count(content: dict[str, Any], counts: dict[str, list[int]], last: dict[str, str]) -> None:
    kind = content["kind"]
    involved = set()
    if kind == "expulsion":
        by, of, n = content["expelling"], content["expelled"], content["count"]
        counts[by][0] += n
        counts[of][1] += n
        counts[by][2] += 1
        counts[of][3] += 1
        involved = {by, of}
    elif kind == "sanctions_round":
        counts[content["imposing"]][4] += 1
        counts[content["target"]][5] += 1
        involved = {content["imposing"], content["target"]}
    else:
        involved = {
            content["controller"],
            content.get("previous_controller"),
            content["place"]["country"],
        }
    for code in involved - {None, "contested"}:
        counts[code]
        last[code] = max(last.get(code, ""), content["occurred_on"])


def _count_towns(reports: list[tuple[dict[str, Any], int]], counts: dict[str, list[int]]) -> None:
    by_place: dict[Any, list[tuple[str, int, dict[str, Any]]]] = defaultdict(list)
    for content, reported in reports:
        place = content["place"]
        key = place.get("geonames_id") or (place["country"], place["name"].lower())
        by_place[key].append((content["occurred_on"], reported, content))
    for history in by_place.values():
        history.sort(key=lambda item: (item[0], item[1]))
        earlier = None
        for _, _, content in history:
            to = content["controller"]
            moved_from = content.get("previous_controller") or earlier
            if moved_from is not None and moved_from != to:
                if to != "contested":
                    counts[to][7] += 1
                if moved_from != "contested":
                    counts[moved_from][8] += 1
            earlier = to
        holder = history[-1][2]["controller"]
        if holder != "contested":
            counts[holder][6] += 1


def _rows(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    fields = ("expelled_foreign_diplomats", "own_diplomats_expelled", "incidents_initiated",
              "incidents_targeted", "rounds_imposed", "rounds_received", "places_controlled",
              "places_gained", "places_lost")  # fmt: skip
    return {
        row["code"]: (*(int(row[f]) for f in fields), row["last_incident_on"].isoformat()
                      if row["last_incident_on"] else None)
        for row in rows
    }  # fmt: skip


async def _check(
    server_dsn: str, template: str, plan: list[tuple[Any, ...]], probe: tuple[int, int | None]
) -> None:
    name = f"legation_prop_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    dsn = with_database(server_dsn, name)
    try:
        conn = await connect(dsn)
        try:
            await _play(conn, plan)
            head = await head_position(conn)
            while await project_batch(conn, limit=7) < head:
                pass
            events = await read_all(conn, 0, 10_000)
            at_n = min(probe[0], head)
            as_of = START + timedelta(days=probe[1]) if probe[1] is not None else None
            live = _rows(await standings(conn, At(head)))
            then = _rows(await standings(conn, At(at_n, as_of)))
            assert live == naive(events, head, None)
            assert then == naive(events, at_n, as_of)
            await rebuild(dsn)
            assert _rows(await standings(conn, At(head))) == live
            assert _rows(await standings(conn, At(at_n, as_of))) == then
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=steps, probe=st.tuples(st.integers(0, 30), st.one_of(st.none(), days)))
def test_live_rebuilt_and_naive_standings_agree(
    server_dsn: str, template: str, plan: list[tuple[Any, ...]], probe: tuple[int, int | None]
) -> None:
    asyncio.run(_check(server_dsn, template, plan, probe))
