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
# One call appends a whole group of requests (group commit) in one implicit
# transaction: each request is checked on its own (idempotency by event id, then
# the expected stream version) and one request's conflict fails only that one.
APPEND = """
CREATE FUNCTION append_events(batch jsonb)
RETURNS TABLE (request integer, outcome text, stream_version integer,
               positions bigint[], versions integer[], recorded_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    req        jsonb;
    ids        uuid[];
    n_events   integer;
    n_found    integer;
    n_same     integer;
    current    integer;
    expected   integer;
    head       bigint := NULL;
BEGIN
    PERFORM pg_advisory_xact_lock(1818585454, 1);  -- the log's ordering lock
    FOR req, request IN
        SELECT b.value, (b.ordinality - 1)::integer
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS b
    LOOP
        ids := ARRAY(SELECT (x->>'id')::uuid FROM jsonb_array_elements(req->'events') x);
        n_events := cardinality(ids);
        IF EXISTS (SELECT 1 FROM events e WHERE e.id = ANY(ids)) THEN
            SELECT count(*)::integer,
                   count(*) FILTER (WHERE e.stream = req->>'stream'
                                      AND e.type = x.value->>'type'
                                      AND e.data = x.value->'data')::integer,
                   array_agg(e.position ORDER BY x.ordinality),
                   array_agg(e.version ORDER BY x.ordinality),
                   min(e.recorded_at)
              INTO n_found, n_same, positions, versions, recorded_at
              FROM jsonb_array_elements(req->'events') WITH ORDINALITY AS x
              JOIN LATERAL (  -- LIMIT keeps it a parameterised index lookup
                  SELECT * FROM events s WHERE s.id = (x.value->>'id')::uuid LIMIT 1
              ) e ON true;
        ELSE
            n_found := 0;
        END IF;
        SELECT coalesce(max(e.version), 0) INTO current
          FROM events e WHERE e.stream = req->>'stream';
        stream_version := current;
        IF n_found > 0 THEN
            outcome := CASE WHEN n_found = n_events AND n_same = n_events
                            THEN 'duplicate' ELSE 'id_conflict' END;
            IF outcome = 'id_conflict' THEN
                positions := NULL; versions := NULL;
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        expected := (req->>'expected_version')::integer;
        IF expected IS NOT NULL AND expected <> current THEN
            outcome := 'stale'; positions := NULL; versions := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        recorded_at := now();
        WITH inserted AS (
            INSERT INTO events (position, id, stream, version, type, schema_version,
                                occurred_on, recorded_at, countries, data, metadata)
            SELECT nextval('events_position_seq'), (x.value->>'id')::uuid, req->>'stream',
                   current + x.ordinality::integer, x.value->>'type',
                   (x.value->>'schema_version')::integer,
                   (x.value->>'occurred_on')::date, recorded_at,
                   ARRAY(SELECT jsonb_array_elements_text(
                       coalesce(x.value->'countries', '[]'::jsonb))),
                   x.value->'data', coalesce(x.value->'metadata', '{}'::jsonb)
              FROM jsonb_array_elements(req->'events') WITH ORDINALITY AS x
             ORDER BY x.ordinality
            RETURNING position, version
        )
        SELECT array_agg(i.position ORDER BY i.position), array_agg(i.version ORDER BY i.position)
          INTO positions, versions FROM inserted i;
        outcome := 'appended';
        stream_version := current + n_events;
        head := positions[array_upper(positions, 1)];
        RETURN NEXT;
    END LOOP;
    IF head IS NOT NULL THEN
        -- Only a doorbell: it is delivered at commit; readers re-read by position.
        PERFORM pg_notify('legation_events', head::text);
    END IF;
END
$$;
-- plpgsql caches a plan per session; one made while the log was nearly empty
-- picks sequential scans and keeps them as the log grows (one full scan per
-- append). Every lookup here has an index, so sequential scans are ruled out.
ALTER FUNCTION append_events(jsonb) SET enable_seqscan = off;
"""


def upgrade() -> None:
    op.execute(EVENTS)
    op.execute(IMMUTABLE)
    op.execute(APPEND)


def downgrade() -> None:
    op.execute("DROP FUNCTION append_events(jsonb)")
    op.execute("DROP TABLE events")
    op.execute("DROP FUNCTION events_are_append_only()")
