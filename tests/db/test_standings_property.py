"""Random reports, corrections and retractions: live, rebuilt and naive standings agree.

The naive fold below is written for the test alone: it replays the log in
Python for a position N and a date D, and counts as API.md says: expulsions
with a count, a range (closed or open at the top) or no number, joint parties
on either side, and the EU's side (`members=true`) by membership on each
incident's date. The dates span 2020-01-31, the last day GB was in the EU.
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
from hypothesis import event as event_
from hypothesis import strategies as st

from service.incidents.blocs import BLOCS
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

BLOC = "EU"
ACTORS = [BLOC, "GB", "DE", "FR", "RU", "US"]
PLACES = [{"name": "Aville", "geonames_id": 11, "country": "UA"}, {"name": "Bton", "country": "UA"}]
START = date(2020, 1, 15)  # day 16 is 2020-01-31: GB on the EU's side through it, then not
META = Metadata(actor="property", correlation_id="property")
SRC = [{"outlet": "Wire"}]

FIGURES = ("expelled_foreign_diplomats", "own_diplomats_expelled")
COUNTERS = (
    "incidents_initiated", "incidents_targeted", "uncounted_initiated", "uncounted_targeted",
    "disputed_incidents", "joint_incidents",
)  # fmt: skip
EXPULSION_FIELDS = (
    *(f"{figure}{part}" for figure in FIGURES for part in ("", "_low", "_high")),
    *COUNTERS,
)
OTHER_FIELDS = ("rounds_imposed", "rounds_received", "places_controlled", "places_gained",
                "places_lost")  # fmt: skip
FIELDS = (*EXPULSION_FIELDS, *OTHER_FIELDS, "last_incident_on")

# Half the dates fall on GB's last day in the EU or its first day out.
days = st.sampled_from([16, 17]) | st.integers(0, 30)


def _on(day: int) -> str:
    return (START + timedelta(days=day)).isoformat()


@st.composite
def counts(draw: st.DrawFn) -> dict[str, Any]:
    """`count` and `count_range` as the sources may give them (None: not given)."""
    shape = draw(st.sampled_from(["none", "none", "closed", "closed", "open", "wrong"]))
    if shape == "none":
        return {"count": draw(st.one_of(st.none(), st.integers(1, 20))), "count_range": None}
    low, width = draw(st.integers(1, 20)), draw(st.integers(0, 5))
    if shape == "wrong":  # low > high, or a count outside the range: refused
        wrong = draw(st.sampled_from([[low + 1 + width, low], [low, low + width]]))
        return {"count": low + width + 1, "count_range": wrong}
    high = low + width if shape == "closed" else None
    inside = st.integers(low, low + width)
    return {"count": draw(st.one_of(st.none(), inside)), "count_range": [low, high]}


@st.composite
def expulsions(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A report naming each actor at most once across its roles (one in ten does not: refused)."""
    order = draw(st.permutations(ACTORS))
    initiators, recipients = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    joint_expelling = order[2 : 2 + initiators]
    joint_expelled = order[2 + initiators : 2 + initiators + recipients]
    if draw(st.integers(0, 9)) == 0:  # a party named twice: refused
        joint_expelled = [*joint_expelled, draw(st.sampled_from([order[0], *joint_expelling]))]
    body: dict[str, Any] = {
        "kind": "expulsion",
        "occurred_on": _on(draw(days)),
        "expelling": order[0],
        "expelled": order[1],
        "sources": SRC,
        **draw(counts()),
    }
    stated_empty = draw(st.tuples(st.booleans(), st.booleans()))  # [] or left out
    if joint_expelling or stated_empty[0]:
        body["joint_expelling"] = joint_expelling
    if joint_expelled or stated_empty[1]:
        body["joint_expelled"] = joint_expelled
    return ("report", {name: value for name, value in body.items() if value is not None})


pairs = st.permutations(ACTORS).map(lambda p: (p[0], p[1]))
sanctions = st.builds(
    lambda roles, number, day: ("report", {"kind": "sanctions_round", "occurred_on": _on(day),
                                "imposing": roles[0], "target": roles[1], "round": number,
                                "sources": SRC}),
    pairs, st.integers(1, 3), days,
)  # fmt: skip


def _town(roles: tuple[str, str | None], place: int, day: int) -> tuple[str, dict[str, Any]]:
    body = {"kind": "territorial_control", "occurred_on": _on(day), "place": PLACES[place],
            "controller": roles[0], "sources": SRC}  # fmt: skip
    return ("report", body | ({"previous_controller": roles[1]} if roles[1] else {}))


controllers = st.tuples(
    st.sampled_from([*ACTORS, "contested"]), st.one_of(st.none(), st.sampled_from(ACTORS))
)
towns = st.builds(_town, controllers, st.integers(0, len(PLACES) - 1), days)


@st.composite
def corrections(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    """Which incident, and a random subset of its date, counts and joint lists (None removes).

    The joint lists are cut from one order of the actors; the parties the incident
    names as expelling or expelled are taken out of them when the step is applied.
    """
    wished: dict[str, Any] = {"occurred_on": _on(draw(days)), **draw(counts())}
    order, split = draw(st.permutations(ACTORS)), draw(st.integers(0, 2))
    size = draw(st.integers(0, 3))
    wished["joint_expelling"] = draw(st.sampled_from([None, order[:split]]))
    wished["joint_expelled"] = draw(st.sampled_from([None, order[split : split + size]]))
    # A count alone often falls outside the range it keeps (refused): mostly both together.
    figures = draw(
        st.sampled_from([(), ("count",), ("count_range",), *[("count", "count_range")] * 2])
    )
    others = draw(st.sets(st.sampled_from(["joint_expelled", "joint_expelling", "occurred_on"])))
    names = sorted({*figures, *others})
    return ("correct", draw(st.integers(0, 50)), {name: wished[name] for name in names})


retractions = st.tuples(st.just("retract"), st.integers(0, 50))
steps = st.lists(
    st.one_of(expulsions(), expulsions(), expulsions(), sanctions, towns, corrections(),
              corrections(), corrections(), retractions),
    min_size=6,
    max_size=30,
)  # fmt: skip


async def _play(conn: Any, plan: list[tuple[Any, ...]]) -> None:
    ids: list[uuid.UUID] = []
    for step in plan:
        if step[0] in ("correct", "retract"):
            if ids:
                await _change(conn, ids[step[1] % len(ids)], step)
            continue
        try:
            incident = decide_report(msgspec.convert(step[1], Report))
        except InvalidInput:  # e.g. controller == previous_controller
            continue
        incident_id, event = report_event(None, incident, META)
        await append(conn, stream_name(incident_id), 0, [event])
        ids.append(incident_id)


def _changes(incident: Any, step: tuple[Any, ...]) -> dict[str, Any]:
    if incident.__struct_config__.tag != "expulsion":  # nothing left to change: refused
        return {name: value for name, value in step[2].items() if name == "occurred_on"}
    parties = {incident.expelling, incident.expelled}
    changes = dict(step[2])
    for name in ("joint_expelling", "joint_expelled"):
        if changes.get(name) is not None:
            changes[name] = [code for code in changes[name] if code not in parties]
    return changes


async def _change(conn: Any, incident_id: uuid.UUID, step: tuple[Any, ...]) -> None:
    state = fold(await read_stream(conn, stream_name(incident_id)))
    assert state is not None
    try:
        if step[0] == "retract":
            data: Any = decide_retraction(state, Retraction(note="random"))
            kind = "incident.retracted"
        else:
            changes = _changes(state.incident, step)
            data = decide_correction(state, Correction(changes=changes))
            kind = "incident.corrected"
    except (InvalidInput, IncidentAlreadyRetracted):
        return
    occurred = getattr(data, "incident", state.incident).occurred_on
    event = new_event(uuid.uuid4(), kind, data, META, occurred, actors(state.incident))
    await append(conn, stream_name(incident_id), state.version, [event])


# ---- the naive fold -------------------------------------------------------------------------


def _current(events: list[Any], position: int, as_of: date | None) -> list[tuple[Any, ...]]:
    """(content, first reported position) of every incident current at N, occurred by D."""
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
    return [
        v
        for v in current.values()
        if v and (as_of is None or date.fromisoformat(v[0]["occurred_on"]) <= as_of)
    ]


def _blank() -> dict[str, Any]:
    return {name: None if name == "last_incident_on" else 0 for name in FIELDS}


def _stated(content: dict[str, Any]) -> tuple[int, int, int | None, bool, bool]:
    """number, least, most, uncounted, disputed: what the sources say, read as API.md says."""
    count, ranged = content.get("count"), content.get("count_range")
    if ranged is None:
        return (count or 0, count or 0, count, count is None, False)
    low, high = ranged
    return (low if count is None else count, low, high, False, low != high)


def _add(row: dict[str, Any], figure: str, stated: tuple[Any, ...], shared: bool) -> None:
    number, least, most = stated[:3]
    row[figure] += 0 if shared else number
    row[f"{figure}_low"] += 0 if shared else least
    high = row[f"{figure}_high"]
    row[f"{figure}_high"] = None if high is None or most is None else high + most


def _expulsion(
    table: dict[str, dict[str, Any]],
    sides: tuple[str, list[str], str, list[str]],
    content: dict[str, Any],
) -> None:
    """Count one expulsion, its sides given as (expelling, joint, expelled, joint)."""
    expelling, joint_expelling, expelled, joint_expelled = sides
    stated = _stated(content)
    for actor in {expelling, expelled, *joint_expelling, *joint_expelled}:  # each in one role
        row = table[actor]
        sent = actor == expelling or actor in joint_expelling
        received = actor == expelled or actor in joint_expelled
        shared = (sent and bool(joint_expelling)) or (received and bool(joint_expelled))
        if sent:
            _add(row, "expelled_foreign_diplomats", stated, shared)
            row["incidents_initiated"] += 1
            row["uncounted_initiated"] += stated[3]
        if received:
            _add(row, "own_diplomats_expelled", stated, shared)
            row["incidents_targeted"] += 1
            row["uncounted_targeted"] += stated[3]
        row["disputed_incidents"] += stated[4] and (sent or received)
        row["joint_incidents"] += shared


def _sides(content: dict[str, Any]) -> tuple[str, list[str], str, list[str]]:
    return (content["expelling"], list(content.get("joint_expelling") or ()),
            content["expelled"], list(content.get("joint_expelled") or ()))  # fmt: skip


def _parties(content: dict[str, Any]) -> set[str]:
    expelling, joint_expelling, expelled, joint_expelled = _sides(content)
    return {expelling, expelled, *joint_expelling, *joint_expelled}


def naive(events: list[Any], position: int, as_of: date | None) -> dict[str, dict[str, Any]]:
    """Standings by replaying the log up to `position`, counting what occurred by `as_of`."""
    valid = _current(events, position, as_of)
    table: dict[str, dict[str, Any]] = defaultdict(_blank)
    for content, _ in valid:
        _count(content, table)
    _count_towns([v for v in valid if v[0]["kind"] == "territorial_control"], table)
    return dict(table)


def _count(content: dict[str, Any], table: dict[str, dict[str, Any]]) -> None:
    kind = content["kind"]
    if kind == "expulsion":
        _expulsion(table, _sides(content), content)
        involved: set[str | None] = {*_parties(content)}
    elif kind == "sanctions_round":
        table[content["imposing"]]["rounds_imposed"] += 1
        table[content["target"]]["rounds_received"] += 1
        involved = {content["imposing"], content["target"]}
    else:
        involved = {
            content["controller"],
            content.get("previous_controller"),
            content["place"]["country"],
        }
    for code in involved:
        if code is None or code == "contested":
            continue
        row = table[code]
        row["last_incident_on"] = max(row["last_incident_on"] or "", content["occurred_on"])


def _count_towns(reports: list[tuple[Any, ...]], table: dict[str, dict[str, Any]]) -> None:
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
                    table[to]["places_gained"] += 1
                if moved_from != "contested":
                    table[moved_from]["places_lost"] += 1
            earlier = to
        holder = history[-1][2]["controller"]
        if holder != "contested":
            table[holder]["places_controlled"] += 1


def naive_side(events: list[Any], position: int, as_of: date | None) -> dict[str, Any]:
    """The EU side's expulsion figures: each party on the side that day counts as the EU."""
    table: dict[str, dict[str, Any]] = defaultdict(_blank)
    for content, _ in _current(events, position, as_of):
        if content["kind"] != "expulsion":
            continue
        side = BLOCS[BLOC].side(date.fromisoformat(content["occurred_on"]))
        expelling, joint_expelling, expelled, joint_expelled = _sides(content)
        mapped = {code: BLOC if code in side else code for code in _parties(content)}
        initiators = sorted({mapped[code] for code in joint_expelling} - {mapped[expelling]})
        recipients = sorted({mapped[code] for code in joint_expelled} - {mapped[expelled]})
        if BLOC in {mapped[expelling], *initiators} and BLOC in {mapped[expelled], *recipients}:
            continue  # inside the side: not the side's doing, nor done to it
        sides = (mapped[expelling], initiators, mapped[expelled], recipients)
        _expulsion(table, sides, content)
    row = table[BLOC]
    return {name: row[name] for name in EXPULSION_FIELDS}


# ---- the SQL side ---------------------------------------------------------------------------


def _value(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat() if isinstance(value, date) else int(value)


def _out_of_bounds(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, int, int | None]]:
    """Where the contract's low <= number <= high (high null: no bound) does not hold."""
    return [
        (row["code"], figure, *bounds)
        for row in rows
        for figure in FIGURES
        for bounds in [tuple(row[f"{figure}{part}"] for part in ("_low", "", "_high"))]
        if not (bounds[0] <= bounds[1] and (bounds[2] is None or bounds[1] <= bounds[2]))
    ]


def _rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["code"]: {name: _value(row[name]) for name in FIELDS} for row in rows}


def _flat(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """code.field: value, so that a failure names what differs."""
    return {f"{code}.{name}": value for code, row in table.items() for name, value in row.items()}


def _side(rows: list[dict[str, Any]]) -> dict[str, Any]:
    table = _rows(rows)
    row = table.get(BLOC, _blank())  # no row: nothing counts for the side
    return {name: row[name] for name in EXPULSION_FIELDS}


def _log(events: list[Any]) -> str:
    """The log, for a failure's message: what was reported, corrected and retracted."""
    streams: dict[str, int] = {}
    lines = []
    for event in events:
        number = streams.setdefault(event.stream, len(streams))
        data = msgspec.json.decode(event.data)
        if event.type == "incident.corrected":
            data = {"changes": data["changes"]}
        elif "sources" in data:
            data = {k: v for k, v in data.items() if k != "sources" and v not in (None, [])}
        lines.append(
            f"{event.position} #{number} {event.type} {msgspec.json.encode(data).decode()}"
        )
    return "\n".join(lines)


def _note(events: list[Any]) -> None:
    """What the log exercised, for --hypothesis-show-statistics."""
    for event in events:
        data = msgspec.json.decode(event.data)
        content = data.get("incident", data)
        event_(event.type)
        if content.get("kind") != "expulsion":
            continue
        if event.type == "incident.corrected":
            event_(f"corrected {'/'.join(sorted(data['changes']))}")
        _, _, most, uncounted, disputed = _stated(content)
        event_("uncounted" if uncounted else "open range" if most is None else "counted")
        if disputed:
            event_("disputed")
        sides = _sides(content)
        if sides[1] or sides[3]:
            event_("joint")
        side = BLOCS[BLOC].side(date.fromisoformat(content["occurred_on"]))
        if "GB" in _parties(content):
            event_(f"GB {'on' if 'GB' in side else 'off'} the EU's side")
        on_side = ({sides[0], *sides[1]} & side, {sides[2], *sides[3]} & side)
        if any(on_side):
            event_("inside the EU's side" if all(on_side) else "the EU's side acts or is acted on")


async def _answers(conn: Any, head: int, at_n: int, as_of: date | None, log: str) -> list[Any]:
    """The SQL's answers: every row live and at (N, D), and the EU's side live and at (N, D)."""
    # The side is asked for as the API asks (country with members=true): with the bloc as
    # `code`, which the side's SQL also reads as the bloc ($3); without it, nothing maps.
    answers = [
        await standings(conn, At(head)),
        await standings(conn, At(at_n, as_of)),
        await standings(conn, At(head, None, BLOC), BLOC),
        await standings(conn, At(at_n, as_of, BLOC), BLOC),
    ]
    for rows in answers:
        assert not _out_of_bounds(rows), f"low <= number <= high: {_out_of_bounds(rows)}\n{log}"
    return [*(_flat(_rows(rows)) for rows in answers[:2]), *(_side(rows) for rows in answers[2:])]


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
            _note(events)
            at_n = min(probe[0], head)
            as_of = START + timedelta(days=probe[1]) if probe[1] is not None else None
            log = _log(events)
            answers = await _answers(conn, head, at_n, as_of, log)
            expected = [
                _flat(naive(events, head, None)),
                _flat(naive(events, at_n, as_of)),
                naive_side(events, head, None),
                naive_side(events, at_n, as_of),
            ]
            for what, got, want in zip(
                ("live", f"at {at_n}, {as_of}", "EU side live", f"EU side at {at_n}, {as_of}"),
                answers,
                expected,
                strict=True,
            ):
                assert got == want, f"{what}\n{log}"
            # One example in four folds the log in parts, each in a process of its own.
            parts = 2 if probe[0] % 4 == 0 else 1
            await rebuild(dsn, parts=parts)
            rebuilt = await _answers(conn, head, at_n, as_of, log)
            assert rebuilt == answers, f"rebuilt in {parts} parts\n{log}"
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=steps, probe=st.tuples(st.integers(0, 30), st.one_of(st.none(), days)))
def test_live_rebuilt_and_naive_standings_agree(
    server_dsn: str, template: str, plan: list[tuple[Any, ...]], probe: tuple[int, int | None]
) -> None:
    asyncio.run(_check(server_dsn, template, plan, probe))
