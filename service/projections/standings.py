"""Standings: aggregates over the incident versions current at a log position.

Every query takes $1 = the position N (what the log held) and $2 = the date D
(what had occurred by then, or null); live answers use N = the checkpoint.
Territorial reports are ordered per place by occurred_on, then by the position
that first reported them; each moved its place from its previous_controller, or
else from the controller of the place's report before it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Final

import msgspec

from service.incidents.blocs import BLOCS

if TYPE_CHECKING:
    from service.log.store import Connection

VALID: Final = """
WITH v AS (
    SELECT * FROM incident_versions
     WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)
       AND ($2::date IS NULL OR occurred_on <= $2)
), t AS (
    SELECT v.incident_id, v.place_key, v.place, v.initiator AS controller, v.occurred_on,
           v.reported_position,
           coalesce(v.recipient, lag(v.initiator) OVER w) AS moved_from,
           row_number() OVER (PARTITION BY v.place_key
                              ORDER BY v.occurred_on DESC, v.reported_position DESC) AS recency
      FROM v WHERE v.kind = 'territorial_control'
    WINDOW w AS (PARTITION BY v.place_key ORDER BY v.occurred_on, v.reported_position)
)"""

STANDINGS: Final = (
    VALID
    + """, per_actor AS (
    SELECT a.actor,
           coalesce(sum(v.count) FILTER (WHERE v.kind = 'expulsion' AND v.initiator = a.actor), 0)
               AS expelled_foreign_diplomats,
           coalesce(sum(v.count) FILTER (WHERE v.kind = 'expulsion' AND v.recipient = a.actor), 0)
               AS own_diplomats_expelled,
           count(*) FILTER (WHERE v.kind = 'expulsion' AND v.initiator = a.actor)
               AS incidents_initiated,
           count(*) FILTER (WHERE v.kind = 'expulsion' AND v.recipient = a.actor)
               AS incidents_targeted,
           count(*) FILTER (WHERE v.kind = 'sanctions_round' AND v.initiator = a.actor)
               AS rounds_imposed,
           count(*) FILTER (WHERE v.kind = 'sanctions_round' AND v.recipient = a.actor)
               AS rounds_received,
           (array_agg(jsonb_build_object('incident', v.incident_id, 'imposing', v.initiator,
                                         'round', v.round, 'occurred_on', v.occurred_on)
                      ORDER BY v.occurred_on DESC, v.reported_position DESC)
               FILTER (WHERE v.kind = 'sanctions_round' AND v.recipient = a.actor))[1]
               AS latest_received,
           max(v.occurred_on) AS last_incident_on
      FROM v CROSS JOIN LATERAL unnest(v.actors) AS a(actor)
     GROUP BY a.actor
), moves AS (
    SELECT controller AS actor, 'controlled' AS what FROM t WHERE recency = 1
    UNION ALL
    SELECT controller, 'gained' FROM t WHERE moved_from IS NOT NULL AND moved_from <> controller
    UNION ALL
    SELECT moved_from, 'lost' FROM t WHERE moved_from IS NOT NULL AND moved_from <> controller
), territory AS (
    SELECT actor, count(*) FILTER (WHERE what = 'controlled') AS places_controlled,
           count(*) FILTER (WHERE what = 'gained') AS places_gained,
           count(*) FILTER (WHERE what = 'lost') AS places_lost
      FROM moves WHERE actor <> 'contested' GROUP BY actor
)
SELECT coalesce(p.actor, r.actor) AS code,
       coalesce(p.expelled_foreign_diplomats, 0)::bigint AS expelled_foreign_diplomats,
       coalesce(p.own_diplomats_expelled, 0)::bigint AS own_diplomats_expelled,
       coalesce(p.incidents_initiated, 0) AS incidents_initiated,
       coalesce(p.incidents_targeted, 0) AS incidents_targeted,
       coalesce(p.rounds_imposed, 0) AS rounds_imposed,
       coalesce(p.rounds_received, 0) AS rounds_received,
       p.latest_received,
       coalesce(r.places_controlled, 0) AS places_controlled,
       coalesce(r.places_gained, 0) AS places_gained,
       coalesce(r.places_lost, 0) AS places_lost,
       p.last_incident_on
  FROM per_actor p FULL JOIN territory r ON r.actor = p.actor
 WHERE $3::text IS NULL OR coalesce(p.actor, r.actor) = $3
"""
)

PAIRS: Final = """, pairs AS (
    SELECT v.kind, v.initiator AS a, v.recipient AS b, v.count, v.occurred_on, v.incident_id,
           v.reported_position
      FROM v WHERE v.kind IN ('expulsion', 'sanctions_round')
    UNION ALL
    SELECT 'territorial_control', t.controller, t.moved_from, NULL, t.occurred_on,
           t.incident_id, t.reported_position
      FROM t WHERE t.moved_from IS NOT NULL AND t.moved_from <> t.controller
), mine AS (
    SELECT p.*, p.b AS counterpart, true AS outgoing FROM pairs p WHERE p.a = $3
    UNION ALL
    SELECT p.*, p.a AS counterpart, false AS outgoing FROM pairs p WHERE p.b = $3
)"""

RELATIONS: Final = (
    VALID
    + PAIRS
    + """
SELECT counterpart,
       coalesce(sum(count) FILTER (WHERE kind = 'expulsion' AND outgoing), 0)::bigint
           AS expelled_foreign_diplomats,
       coalesce(sum(count) FILTER (WHERE kind = 'expulsion' AND NOT outgoing), 0)::bigint
           AS own_diplomats_expelled,
       count(*) FILTER (WHERE kind = 'sanctions_round' AND outgoing) AS sanctions_rounds_imposed,
       count(*) FILTER (WHERE kind = 'sanctions_round' AND NOT outgoing)
           AS sanctions_rounds_received,
       count(DISTINCT incident_id) AS incidents,
       max(occurred_on) AS last_incident_on
  FROM mine
 WHERE counterpart <> 'contested' AND counterpart <> $3
   AND ($4::text IS NULL OR counterpart = $4)
   AND ($5::text IS NULL OR counterpart > $5)
 GROUP BY counterpart
 ORDER BY counterpart
 LIMIT $6
"""
)

BETWEEN: Final = (
    VALID
    + PAIRS
    + """
SELECT DISTINCT ON (v.occurred_on, v.reported_position, v.incident_id)
       v.incident_id AS id, v.kind, v.occurred_on, m.a AS initiator, m.b AS recipient,
       v.count, v.round, v.place, v.responds_to, v.summary, v.reported_position
  FROM mine m JOIN v ON v.incident_id = m.incident_id
 WHERE m.counterpart = $4
   AND ($5::date IS NULL OR (v.occurred_on, v.reported_position, v.incident_id)
                            > ($5, $6::bigint, $7::uuid))
 ORDER BY v.occurred_on, v.reported_position, v.incident_id
 LIMIT $8
"""
)

TIMELINE: Final = (
    VALID
    + """
SELECT v.incident_id AS id, v.kind, v.occurred_on,
       CASE WHEN v.initiator = $3 THEN
                CASE v.kind WHEN 'expulsion' THEN 'expelling' WHEN 'sanctions_round' THEN 'imposing'
                            ELSE 'controller' END
            WHEN v.recipient = $3 THEN
                CASE v.kind WHEN 'expulsion' THEN 'expelled' WHEN 'sanctions_round' THEN 'target'
                            ELSE 'previous_controller' END
            ELSE 'location' END AS role,
       v.initiator, v.recipient, v.count, v.round, v.place, v.responds_to, v.summary,
       v.reported_position
  FROM v
 WHERE v.actors @> ARRAY[$3::text]
   AND ($4::date IS NULL OR (v.occurred_on, v.reported_position, v.incident_id)
                            < ($4, $5::bigint, $6::uuid))
 ORDER BY v.occurred_on DESC, v.reported_position DESC, v.incident_id DESC
 LIMIT $7
"""
)

TERRITORIES: Final = (
    VALID
    + """
SELECT l.place, l.controller, l.place_key,
       -- the latest report that set the current controller: a move to it, or the
       -- place's first report (one that only confirms it does not count)
       max(r.occurred_on) FILTER (WHERE r.controller = l.controller
                                    AND r.moved_from IS DISTINCT FROM r.controller) AS since,
       count(*) AS reports,
       max(r.occurred_on) AS last_reported_on,
       array_agg(r.incident_id ORDER BY r.occurred_on, r.reported_position) AS incidents
  FROM t r JOIN t l ON l.place_key = r.place_key AND l.recency = 1
 WHERE ($3::text IS NULL OR l.place->>'country' = $3)
   AND ($4::text IS NULL OR l.place->>'region' = $4)
   AND ($5::text IS NULL OR l.controller = $5)
   AND ($6::text IS NULL OR (l.place->>'country', l.place->>'name', l.place_key)
                            > ($6, $7::text, $8::text))
 GROUP BY l.place_key, l.place, l.controller
 ORDER BY l.place->>'country', l.place->>'name', l.place_key
 LIMIT $9
"""
)


def _on_side(actor: str) -> str:
    """SQL: whether `actor` (a column) is on the side $3 on the incident's date."""
    return (
        f"(coalesce({actor} = $3::text, false) OR EXISTS (SELECT 1 FROM side s"
        f" WHERE s.code = {actor} AND s.joined <= r.occurred_on"
        " AND (s.left_on IS NULL OR r.occurred_on <= s.left_on)))"
    )


def _sided(sql: str, first: int) -> str:
    """`sql` with the bloc $3 standing for its whole side: every actor that was a member on
    an incident's date counts as the bloc, and incidents inside the side are left out.
    The members come as three arrays from parameter `first` on (see _members)."""
    assert sql.startswith(VALID)
    within = VALID[VALID.index("SELECT * FROM incident_versions") : VALID.index("), t AS (")]
    side = f"""
WITH side(code, joined, left_on) AS (
    SELECT * FROM unnest(${first}::text[], ${first + 1}::date[], ${first + 2}::date[])
), raw AS (
    {within}), marked AS (
    SELECT r.*, {_on_side("r.initiator")} AS initiator_on,
           {_on_side("r.recipient")} AS recipient_on,
           ARRAY(SELECT DISTINCT CASE WHEN {_on_side("a.actor")} THEN $3::text ELSE a.actor END
                   FROM unnest(r.actors) AS a(actor)) AS side_actors
      FROM raw r
), v AS (
    SELECT m.incident_id, m.valid_from, m.valid_to, m.reported_position, m.kind, m.occurred_on,
           CASE WHEN m.initiator_on THEN $3::text ELSE m.initiator END AS initiator,
           CASE WHEN m.recipient_on THEN $3::text ELSE m.recipient END AS recipient,
           m.count, m.round, m.place_key, m.place, m.side_actors AS actors, m.responds_to,
           m.summary, m.initiator AS reported_initiator, m.recipient AS reported_recipient
      FROM marked m
     WHERE NOT (m.initiator_on AND m.recipient_on)
"""
    return side + VALID[VALID.index("), t AS (") :] + sql[len(VALID) :]


def _members(code: str) -> tuple[list[str], list[date], list[date | None]]:
    members = BLOCS[code].members
    return [m.code for m in members], [m.joined for m in members], [m.left for m in members]


STANDINGS_SIDED: Final = _sided(STANDINGS, 4)
RELATIONS_SIDED: Final = _sided(RELATIONS, 7)
# A ledger row names the parties as the incident does, not the side they stood on.
BETWEEN_SIDED: Final = _sided(BETWEEN, 9).replace(
    "m.a AS initiator, m.b AS recipient",
    "CASE WHEN v.kind = 'territorial_control' THEN m.a ELSE v.reported_initiator END"
    " AS initiator,\n       CASE WHEN v.kind = 'territorial_control' THEN m.b"
    " ELSE v.reported_recipient END AS recipient",
)


class At(msgspec.Struct, frozen=True):
    """Which state of knowledge a standing answers for: log position and occurrence date,
    and the bloc whose side is counted as one actor (`members=true`), if any."""

    position: int
    as_of: date | None = None
    side: str | None = None


async def standings(conn: Connection, at: At, code: str | None = None) -> list[dict[str, Any]]:
    """One row per actor (or only `code`) with every standing field."""
    sql, side = (STANDINGS, ()) if at.side is None else (STANDINGS_SIDED, _members(at.side))
    rows = await conn.fetch(sql, at.position, at.as_of, code, *side)
    return [dict(row) for row in rows]


class Page(msgspec.Struct, frozen=True):
    """Which page of a list: after the sort key `after` (None: the first), at most `limit`."""

    after: tuple[Any, ...] | None = None
    limit: int | None = None  # None: every row


EVERY: Final = Page()


def _after(page: Page, width: int) -> tuple[Any, ...]:
    return page.after if page.after is not None else (None,) * width


async def relations(
    conn: Connection, at: At, code: str, counterpart: str | None = None, page: Page = EVERY
) -> list[dict[str, Any]]:
    """The ledger rows between `code` and each counterpart (or only `counterpart`), by code."""
    sql, side = (RELATIONS, ()) if at.side is None else (RELATIONS_SIDED, _members(at.side))
    rows = await conn.fetch(
        sql, at.position, at.as_of, code, counterpart, *_after(page, 1), page.limit, *side
    )
    return [dict(row) for row in rows]


async def between(conn: Connection, at: At, a: str, b: str, page: Page) -> list[dict[str, Any]]:
    """The incidents between two actors, oldest first (after `page.after`: date, position, id)."""
    sql, side = (BETWEEN, ()) if at.side is None else (BETWEEN_SIDED, _members(at.side))
    rows = await conn.fetch(sql, at.position, at.as_of, a, b, *_after(page, 3), page.limit, *side)
    return [dict(row) for row in rows]


async def timeline(conn: Connection, at: At, code: str, page: Page) -> list[dict[str, Any]]:
    """The incidents an actor takes part in, newest first, with its role."""
    rows = await conn.fetch(TIMELINE, at.position, at.as_of, code, *_after(page, 3), page.limit)
    return [dict(row) for row in rows]


async def territories(
    conn: Connection,
    at: At,
    filters: tuple[str | None, str | None, str | None],
    page: Page,
) -> list[dict[str, Any]]:
    """Places with their latest controller, since when, and their reports."""
    rows = await conn.fetch(
        TERRITORIES, at.position, at.as_of, *filters, *_after(page, 3), page.limit
    )
    return [dict(row) for row in rows]
