"""The event log: an append-only table, its ordering and its append function.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EVENTS = """
CREATE TABLE events (
    position       bigint      PRIMARY KEY,
    id             uuid        NOT NULL UNIQUE,
    stream         text        NOT NULL CHECK (stream ~ '^[a-z_]+-[0-9a-f-]{36}$'),
    version        integer     NOT NULL CHECK (version >= 1),
    type           text        NOT NULL,
    schema_version integer     NOT NULL CHECK (schema_version >= 1),
    occurred_on    date,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    countries      text[]      NOT NULL DEFAULT '{}',
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (stream, version)
);
CREATE SEQUENCE events_position_seq AS bigint OWNED BY events.position;
CREATE INDEX events_type_position ON events (type, position);
CREATE INDEX events_countries ON events USING gin (countries);
"""

# ENABLE ALWAYS: the trigger fires even under session_replication_role = replica,
# so not even a superuser edits the log without first dropping the trigger.
IMMUTABLE = """
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append a correction or a retraction instead';
END
$$;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;
"""

# Positions commit in order because every append takes one transaction-scoped
# advisory lock *before* drawing positions from the sequence, and PostgreSQL
# releases that lock only after the commit is visible. Without it, a transaction
# that drew position 5 could commit after one that drew 6, and a reader paging
# with `after=` would already be past 5 (the hazard the eventsourcing library's
# `_lock_table` comment describes). Gap detection with timeouts is not used: it
# loses events. The sequence may leave holes (a crashed call), never reorderings.
#
# One call appends a whole group of requests (group commit, or a batch) in one
# implicit transaction: each request is checked on its own (idempotency by event
# id, then the expected stream version) and one request's refusal fails only
# that one. Requests on distinct streams are decided and inserted set-wise;
# a group that touches one stream twice is appended request by request, since
# each of those must see the versions the previous one wrote.
# A group arrives as parallel arrays, one element per event (asyncpg sends
# arrays in binary, far cheaper to take apart than one JSON document).
ARGS = """p_request integer[], p_stream text[], p_expected integer[], p_id uuid[],
    p_type text[], p_schema_version integer[], p_occurred_on date[], p_countries text[],
    p_data jsonb[], p_metadata jsonb[]"""
ARG_NAMES = """p_request, p_stream, p_expected, p_id, p_type, p_schema_version, p_occurred_on,
    p_countries, p_data, p_metadata"""
ARG_TYPES = (
    "integer[], text[], integer[], uuid[], text[], integer[], date[], text[], jsonb[], jsonb[]"
)

BATCH_EVENTS = f"""
CREATE FUNCTION batch_events({ARGS})
RETURNS TABLE (i integer, request integer, n integer, stream text, expected integer, id uuid,
               type text, schema_version integer, occurred_on date, countries text[],
               data jsonb, metadata jsonb)
LANGUAGE sql IMMUTABLE AS $$
    SELECT e.i::integer, e.request,
           (row_number() OVER (PARTITION BY e.request ORDER BY e.i))::integer,
           e.stream, e.expected, e.id, e.type, e.schema_version, e.occurred_on,
           string_to_array(e.countries, ','), e.data, e.metadata
      FROM unnest({ARG_NAMES}) WITH ORDINALITY
           AS e(request, stream, expected, id, type, schema_version, occurred_on,
                countries, data, metadata, i)
$$;
"""

PENDING = f"batch_events({ARG_NAMES})"
RESULT = """(request integer, outcome text, stream_version integer, found_position bigint,
    found_version integer, found_at timestamptz, first_position bigint, appended_at timestamptz)"""

# One row per event comes back: its request, the request's outcome, the
# stream's version before the group, where a duplicate is already stored, and
# the first position of the block the appended events were numbered from, in
# request and event order (the caller counts its way through the block).
APPEND = f"""
CREATE FUNCTION append_events({ARGS})
RETURNS TABLE {RESULT}
LANGUAGE plpgsql AS $$
DECLARE
    outcomes   text[];
    currents   integer[];
    found_at   bigint[];
    found_v    integer[];
    found_t    timestamptz[];
    total      integer;
    first      bigint;
    at         timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(1818585454, 1);  -- the log's ordering lock
    -- Taken under the lock (now() is the transaction's start, which may precede
    -- a wait for it): recorded_at then never decreases as positions grow.
    at := clock_timestamp();
    WITH looked_up AS (
        SELECT e.i, e.request, e.stream, e.expected, s.position, s.version, s.recorded_at,
               s.position IS NOT NULL AS found,
               coalesce(s.stream = e.stream AND s.type = e.type AND s.data = e.data, false)
                   AS same
          FROM {PENDING} e
          LEFT JOIN LATERAL (  -- LIMIT keeps it an index lookup per event
              SELECT x.* FROM events x WHERE x.id = e.id LIMIT 1) s ON true
    ), counted AS (
        SELECT l.*, count(*) FILTER (WHERE l.found) OVER w AS n_found,
               count(*) FILTER (WHERE l.same) OVER w AS n_same, count(*) OVER w AS n_events
          FROM looked_up l WINDOW w AS (PARTITION BY l.request)
    )
    SELECT array_agg(CASE WHEN c.n_found > 0 THEN
                              CASE WHEN c.n_same = c.n_events THEN 'duplicate'
                                   ELSE 'id_conflict' END
                          WHEN c.expected IS NOT NULL AND c.expected <> v.current THEN 'stale'
                          ELSE 'appended' END ORDER BY c.i),
           array_agg(v.current ORDER BY c.i), array_agg(c.position ORDER BY c.i),
           array_agg(c.version ORDER BY c.i), array_agg(c.recorded_at ORDER BY c.i)
      INTO outcomes, currents, found_at, found_v, found_t
      FROM counted c
      CROSS JOIN LATERAL (SELECT coalesce(max(x.version), 0) AS current
                            FROM events x WHERE x.stream = c.stream) v;

    total := cardinality(array_positions(outcomes, 'appended'));
    IF total > 0 THEN
        -- One block of positions, numbered in request and event order, so a
        -- stream's versions ascend with its positions whatever the plan.
        first := nextval('events_position_seq');
        IF total > 1 THEN  -- safe only under the lock: nobody else draws meanwhile
            PERFORM setval('events_position_seq', first + total - 1);
        END IF;
        INSERT INTO events (position, id, stream, version, type, schema_version,
                            occurred_on, recorded_at, countries, data, metadata)
        SELECT first + row_number() OVER (ORDER BY e.i) - 1, e.id, e.stream,
               currents[e.i] + e.n, e.type, e.schema_version, e.occurred_on, at,
               e.countries, e.data, e.metadata
          FROM {PENDING} e
         WHERE outcomes[e.i] = 'appended';
        -- Only a doorbell: it is delivered at commit; readers re-read by position.
        PERFORM pg_notify('legation_events', (first + total - 1)::text);
    END IF;

    RETURN QUERY
    SELECT u.request, u.outcome, u.current, u.found_position, u.found_version, u.found_at,
           first, at
      FROM unnest(p_request, outcomes, currents, found_at, found_v, found_t)
           AS u(request, outcome, current, found_position, found_version, found_at);
END
$$;
"""

# append_events decides every request of a group against the log as it was
# before the group, so a group that touches one stream twice goes through here:
# one request at a time, each seeing what the previous one wrote. (Were such a
# group given to append_events, the unique (stream, version) would refuse it.)
APPEND_IN_TURN = f"""
CREATE FUNCTION append_events_in_turn({ARGS})
RETURNS TABLE {RESULT}
LANGUAGE plpgsql AS $$
DECLARE
    low   integer := 1;
    high  integer;
BEGIN
    WHILE low <= cardinality(p_request) LOOP
        high := low;
        WHILE high < cardinality(p_request) AND p_request[high + 1] = p_request[low] LOOP
            high := high + 1;
        END LOOP;
        RETURN QUERY SELECT * FROM append_events(
            p_request[low:high], p_stream[low:high], p_expected[low:high], p_id[low:high],
            p_type[low:high], p_schema_version[low:high], p_occurred_on[low:high],
            p_countries[low:high], p_data[low:high], p_metadata[low:high]);
        low := high + 1;
    END LOOP;
END
$$;
"""

# plpgsql caches a plan per session; one made while the log was nearly empty
# picks sequential scans and keeps them as the log grows (one full scan per
# append). Every lookup here has an index, so sequential scans are ruled out.
PLANS = f"""
ALTER FUNCTION append_events({ARG_TYPES}) SET enable_seqscan = off;
"""


def upgrade() -> None:
    op.execute(EVENTS)
    op.execute(IMMUTABLE)
    op.execute(BATCH_EVENTS)
    op.execute(APPEND)
    op.execute(APPEND_IN_TURN)
    op.execute(PLANS)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION append_events_in_turn({ARG_TYPES})")
    op.execute(f"DROP FUNCTION append_events({ARG_TYPES})")
    op.execute(f"DROP FUNCTION batch_events({ARG_TYPES})")
    op.execute("DROP TABLE events")
    op.execute("DROP FUNCTION events_are_append_only()")
