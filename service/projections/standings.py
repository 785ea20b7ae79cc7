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

# What an expulsion attributes, from its counts as stated: the v1 number (its
# count, else its range's low, else 0), the least (the range's low, else the
# count, else 0) and the most (the range's high, else the count; null when the
# sources set no bound: no number, or a range open at the top).
FIGURES: Final = """coalesce(count, count_low, 0) AS number,
           coalesce(count_low, count, 0) AS least,
           CASE WHEN count_low IS NULL THEN count ELSE count_high END AS most,
           count IS NULL AND count_low IS NULL AS uncounted,
           count_low IS NOT NULL AND count_low IS DISTINCT FROM count_high AS disputed"""
AT: Final = """valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)
       AND ($2::date IS NULL OR occurred_on <= $2)"""
# The incident versions current at $1 that occurred by $2: `v`.
PLAIN: Final = f"""
WITH v AS (
    SELECT *, {FIGURES}
      FROM incident_versions WHERE {AT}
)"""
TOWNS: Final = """, t AS (
    SELECT v.incident_id, v.place_key, v.place, v.initiator AS controller, v.occurred_on,
           v.reported_position,
           coalesce(v.recipient, lag(v.initiator) OVER w) AS moved_from,
           row_number() OVER (PARTITION BY v.place_key
                              ORDER BY v.occurred_on DESC, v.reported_position DESC) AS recency
      FROM v WHERE v.kind = 'territorial_control'
    WINDOW w AS (PARTITION BY v.place_key ORDER BY v.occurred_on, v.reported_position)
)"""


def _figure(name: str, alias: str, where: str) -> str:
    """SQL: a figure (the sum of `alias`.number), its low and its high, over rows `where`."""
    return f"""coalesce(sum({alias}.number) FILTER (WHERE {where}), 0)::bigint AS {name},
           coalesce(sum({alias}.least) FILTER (WHERE {where}), 0)::bigint AS {name}_low,
           CASE WHEN bool_and({alias}.most IS NOT NULL) FILTER (WHERE {where}) IS NOT FALSE
                THEN coalesce(sum({alias}.most) FILTER (WHERE {where}), 0) END::bigint
               AS {name}_high"""


# Each actor's part in each incident: whether it expelled or had diplomats
# expelled, and what that attributes to it alone. A party to a joint side
# (`joint_*` not empty) is attributed nothing but may have done it all.
PARTS: Final = """
      FROM v CROSS JOIN LATERAL unnest(v.actors) AS a(actor)
      CROSS JOIN LATERAL (
          SELECT v.kind = 'expulsion'
                     AND (v.initiator = a.actor OR a.actor = ANY(v.joint_initiators)) AS sent,
                 v.kind = 'expulsion'
                     AND (v.recipient = a.actor OR a.actor = ANY(v.joint_recipients)) AS received
      ) r
      CROSS JOIN LATERAL (
          SELECT (r.sent AND cardinality(v.joint_initiators) > 0)
                     OR (r.received AND cardinality(v.joint_recipients) > 0) AS shared
      ) j
      CROSS JOIN LATERAL (
          SELECT CASE WHEN j.shared THEN 0 ELSE v.number END AS number,
                 CASE WHEN j.shared THEN 0 ELSE v.least END AS least, v.most
      ) x"""

PER_ACTOR_COUNTS: Final = (
    "expelled_foreign_diplomats", "expelled_foreign_diplomats_low", "own_diplomats_expelled",
    "own_diplomats_expelled_low", "incidents_initiated", "incidents_targeted",
    "uncounted_initiated", "uncounted_targeted", "disputed_incidents", "joint_incidents",
    "rounds_imposed", "rounds_received",
)  # fmt: skip


def _zero_without(columns: tuple[str, ...]) -> str:
    # An actor with places but no other incident has no per_actor row: zeros.
    return ",\n       ".join(f"coalesce(p.{name}, 0) AS {name}" for name in columns)


STANDINGS: Final = f"""
, per_actor AS (
    SELECT a.actor,
           {_figure("expelled_foreign_diplomats", "x", "r.sent")},
           {_figure("own_diplomats_expelled", "x", "r.received")},
           count(*) FILTER (WHERE r.sent) AS incidents_initiated,
           count(*) FILTER (WHERE r.received) AS incidents_targeted,
           count(*) FILTER (WHERE r.sent AND v.uncounted) AS uncounted_initiated,
           count(*) FILTER (WHERE r.received AND v.uncounted) AS uncounted_targeted,
           count(*) FILTER (WHERE (r.sent OR r.received) AND v.disputed) AS disputed_incidents,
           count(*) FILTER (WHERE j.shared) AS joint_incidents,
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
      {PARTS}
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
       {_zero_without(PER_ACTOR_COUNTS)},
       CASE WHEN p.actor IS NOT NULL THEN p.expelled_foreign_diplomats_high ELSE 0 END
           AS expelled_foreign_diplomats_high,
       CASE WHEN p.actor IS NOT NULL THEN p.own_diplomats_expelled_high ELSE 0 END
           AS own_diplomats_expelled_high,
       p.latest_received, p.last_incident_on,
       coalesce(r.places_controlled, 0) AS places_controlled,
       coalesce(r.places_gained, 0) AS places_gained,
       coalesce(r.places_lost, 0) AS places_lost
  FROM per_actor p FULL JOIN territory r ON r.actor = p.actor
 WHERE $3::text IS NULL OR coalesce(p.actor, r.actor) = $3
"""

# Who acted on whom: every party of one side with every party of the other
# (`shared` where either side is joint), and each move of a place.
PAIRS: Final = """, pairs AS (
    SELECT v.kind, i.actor AS a, o.actor AS b, v.occurred_on, v.incident_id,
           v.reported_position, v.uncounted, v.disputed, j.shared,
           CASE WHEN j.shared THEN 0 ELSE v.number END AS number,
           CASE WHEN j.shared THEN 0 ELSE v.least END AS least, v.most
      FROM v CROSS JOIN LATERAL unnest(v.initiator || v.joint_initiators) AS i(actor)
             CROSS JOIN LATERAL unnest(v.recipient || v.joint_recipients) AS o(actor)
             CROSS JOIN LATERAL (
                 SELECT cardinality(v.joint_initiators) + cardinality(v.joint_recipients) > 0
                            AS shared
             ) j
     WHERE v.kind IN ('expulsion', 'sanctions_round')
    UNION ALL
    SELECT 'territorial_control', t.controller, t.moved_from, t.occurred_on, t.incident_id,
           t.reported_position, false, false, false, 0, 0, 0
      FROM t WHERE t.moved_from IS NOT NULL AND t.moved_from <> t.controller
), mine AS (
    SELECT p.*, p.b AS counterpart, true AS outgoing FROM pairs p WHERE p.a = $3
    UNION ALL
    SELECT p.*, p.a AS counterpart, false AS outgoing FROM pairs p WHERE p.b = $3
)"""

RELATIONS: Final = f"""{PAIRS}
SELECT m.counterpart,
       {_figure("expelled_foreign_diplomats", "m", "m.kind = 'expulsion' AND m.outgoing")},
       {_figure("own_diplomats_expelled", "m", "m.kind = 'expulsion' AND NOT m.outgoing")},
       count(*) FILTER (WHERE m.kind = 'expulsion' AND m.outgoing AND m.uncounted)
           AS uncounted_initiated,
       count(*) FILTER (WHERE m.kind = 'expulsion' AND NOT m.outgoing AND m.uncounted)
           AS uncounted_targeted,
       count(*) FILTER (WHERE m.disputed) AS disputed_incidents,
       count(*) FILTER (WHERE m.shared) AS joint_incidents,
       count(*) FILTER (WHERE m.kind = 'sanctions_round' AND m.outgoing)
           AS sanctions_rounds_imposed,
       count(*) FILTER (WHERE m.kind = 'sanctions_round' AND NOT m.outgoing)
           AS sanctions_rounds_received,
       count(*) FILTER (WHERE m.kind = 'territorial_control' AND m.outgoing) AS places_taken,
       count(*) FILTER (WHERE m.kind = 'territorial_control' AND NOT m.outgoing)
           AS places_lost,
       count(DISTINCT m.incident_id) AS incidents,
       max(m.occurred_on) AS last_incident_on
  FROM mine m
 WHERE m.counterpart <> 'contested' AND m.counterpart <> $3
   AND ($4::text IS NULL OR m.counterpart = $4)
   AND ($5::text IS NULL OR m.counterpart > $5)
 GROUP BY m.counterpart
 ORDER BY m.counterpart
 LIMIT $6
"""

# A ledger row states the incident as reported (`s`): its parties, not the side
# they stood on, and its counts as the sources gave them.
BETWEEN: Final = f"""{PAIRS}
SELECT DISTINCT ON (v.occurred_on, v.reported_position, v.incident_id)
       v.incident_id AS id, v.kind, v.occurred_on,
       CASE WHEN v.kind = 'territorial_control' THEN m.a ELSE s.initiator END AS initiator,
       CASE WHEN v.kind = 'territorial_control' THEN m.b ELSE s.recipient END AS recipient,
       s.count, s.count_low, s.count_high, s.joint_initiators, s.joint_recipients,
       v.round, v.place, v.responds_to, v.summary, v.reported_position
  FROM mine m JOIN v ON v.incident_id = m.incident_id
  JOIN incident_versions s ON s.incident_id = v.incident_id AND s.valid_from = v.valid_from
 WHERE m.counterpart = $4
   AND ($5::date IS NULL OR (v.occurred_on, v.reported_position, v.incident_id)
                            > ($5, $6::bigint, $7::uuid))
 ORDER BY v.occurred_on, v.reported_position, v.incident_id
 LIMIT $8
"""

TIMELINE: Final = """
SELECT v.incident_id AS id, v.kind, v.occurred_on,
       CASE WHEN v.initiator = $3 THEN
                CASE v.kind WHEN 'expulsion' THEN 'expelling' WHEN 'sanctions_round' THEN 'imposing'
                            ELSE 'controller' END
            WHEN v.recipient = $3 THEN
                CASE v.kind WHEN 'expulsion' THEN 'expelled' WHEN 'sanctions_round' THEN 'target'
                            ELSE 'previous_controller' END
            WHEN $3 = ANY(v.joint_initiators) THEN 'joint_expelling'
            WHEN $3 = ANY(v.joint_recipients) THEN 'joint_expelled'
            ELSE 'location' END AS role,
       v.initiator, v.recipient, v.count, v.count_low, v.count_high, v.joint_initiators,
       v.joint_recipients, v.round, v.place, v.responds_to, v.summary, v.reported_position
  FROM v
 WHERE v.actors @> ARRAY[$3::text]
   AND ($4::date IS NULL OR (v.occurred_on, v.reported_position, v.incident_id)
                            < ($4, $5::bigint, $6::uuid))
 ORDER BY v.occurred_on DESC, v.reported_position DESC, v.incident_id DESC
 LIMIT $7
"""

TERRITORIES: Final = """
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


def _mapped(actor: str) -> str:
    """SQL: `actor` (a column), or the bloc $3 where it was on $3's side on the incident's date."""
    return (
        f"CASE WHEN {actor} = $3::text OR EXISTS (SELECT 1 FROM side s"
        f" WHERE s.code = {actor} AND s.joined <= r.occurred_on"
        f" AND (s.left_on IS NULL OR r.occurred_on <= s.left_on)) THEN $3::text ELSE {actor} END"
    )


def _mapped_all(column: str) -> str:
    return f"ARRAY(SELECT DISTINCT {_mapped('a.actor')} FROM unnest({column}) AS a(actor))"


def _sided(first: int) -> str:
    """`v` with the bloc $3 standing for its whole side: every actor that was a member on
    an incident's date counts as the bloc, a joint side made of members alone is the
    bloc alone, and incidents with the side on both sides are left out. The members
    come as three arrays from parameter `first` on (see _members)."""
    return f"""
WITH side(code, joined, left_on) AS (
    SELECT * FROM unnest(${first}::text[], ${first + 1}::date[], ${first + 2}::date[])
), marked AS (
    SELECT r.*, {_mapped("r.initiator")} AS side_initiator,
           {_mapped("r.recipient")} AS side_recipient,
           {_mapped_all("r.joint_initiators")} AS side_joint_initiators,
           {_mapped_all("r.joint_recipients")} AS side_joint_recipients,
           {_mapped_all("r.actors")} AS side_actors
      FROM incident_versions r WHERE {AT}
), v AS (
    SELECT m.incident_id, m.valid_from, m.valid_to, m.reported_position, m.kind, m.occurred_on,
           m.side_initiator AS initiator, m.side_recipient AS recipient, m.count, m.round,
           m.place_key, m.place, m.side_actors AS actors, m.responds_to, m.summary,
           m.count_low, m.count_high,
           array_remove(m.side_joint_initiators, m.side_initiator) AS joint_initiators,
           array_remove(m.side_joint_recipients, m.side_recipient) AS joint_recipients,
           {FIGURES}
      FROM marked m
     WHERE NOT coalesce($3::text = ANY(m.side_initiator || m.side_joint_initiators)
                        AND $3::text = ANY(m.side_recipient || m.side_joint_recipients), false)
)"""


def _members(code: str) -> tuple[list[str], list[date], list[date | None]]:
    members = BLOCS[code].members
    return [m.code for m in members], [m.joined for m in members], [m.left for m in members]


def _query(head: str, body: str) -> str:
    return head + TOWNS + body


STANDINGS_PLAIN: Final = _query(PLAIN, STANDINGS)
STANDINGS_SIDED: Final = _query(_sided(4), STANDINGS)
RELATIONS_PLAIN: Final = _query(PLAIN, RELATIONS)
RELATIONS_SIDED: Final = _query(_sided(7), RELATIONS)
BETWEEN_PLAIN: Final = _query(PLAIN, BETWEEN)
BETWEEN_SIDED: Final = _query(_sided(9), BETWEEN)
TIMELINE_PLAIN: Final = _query(PLAIN, TIMELINE)
TERRITORIES_PLAIN: Final = _query(PLAIN, TERRITORIES)


class At(msgspec.Struct, frozen=True):
    """Which state of knowledge a standing answers for: log position and occurrence date,
    and the bloc whose side is counted as one actor (`members=true`), if any."""

    position: int
    as_of: date | None = None
    side: str | None = None


async def standings(conn: Connection, at: At, code: str | None = None) -> list[dict[str, Any]]:
    """One row per actor (or only `code`) with every standing field; a side's is one row."""
    if at.side is not None:
        # $3 is both the code and the side's bloc: any other code would count another side.
        if code not in (None, at.side):
            raise ValueError(f"the {at.side} side has one row, not {code}'s")
        code = at.side
    sql, side = (STANDINGS_PLAIN, ()) if at.side is None else (STANDINGS_SIDED, _members(at.side))
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
    sql, side = (RELATIONS_PLAIN, ()) if at.side is None else (RELATIONS_SIDED, _members(at.side))
    rows = await conn.fetch(
        sql, at.position, at.as_of, code, counterpart, *_after(page, 1), page.limit, *side
    )
    return [dict(row) for row in rows]


async def between(conn: Connection, at: At, a: str, b: str, page: Page) -> list[dict[str, Any]]:
    """The incidents between two actors, oldest first (after `page.after`: date, position, id)."""
    sql, side = (BETWEEN_PLAIN, ()) if at.side is None else (BETWEEN_SIDED, _members(at.side))
    rows = await conn.fetch(sql, at.position, at.as_of, a, b, *_after(page, 3), page.limit, *side)
    return [dict(row) for row in rows]


async def timeline(conn: Connection, at: At, code: str, page: Page) -> list[dict[str, Any]]:
    """The incidents an actor takes part in, newest first, with its role."""
    rows = await conn.fetch(
        TIMELINE_PLAIN, at.position, at.as_of, code, *_after(page, 3), page.limit
    )
    return [dict(row) for row in rows]


async def territories(
    conn: Connection,
    at: At,
    filters: tuple[str | None, str | None, str | None],
    page: Page,
) -> list[dict[str, Any]]:
    """Places with their latest controller, since when, and their reports."""
    rows = await conn.fetch(
        TERRITORIES_PLAIN, at.position, at.as_of, *filters, *_after(page, 3), page.limit
    )
    return [dict(row) for row in rows]
