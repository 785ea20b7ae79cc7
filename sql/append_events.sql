-- The log's way in: appends a whole group of requests (group commit, or a
-- batch) in the caller's transaction. Groups that only open streams try
-- append_new_streams first, which comes here when a stream or an id is stored.
--
-- Positions commit in order because every append takes one transaction-scoped
-- advisory lock *before* drawing positions from the sequence, and PostgreSQL
-- releases that lock only after the commit is visible. Without it, a transaction
-- that drew position 5 could commit after one that drew 6, and a reader paging
-- with `after=` would already be past 5. The sequence may leave holes (a crashed
-- call, a block append_new_streams undid), never reorderings.
--
-- Each request is checked on its own (idempotency by event id, then the expected
-- stream version) and one request's refusal fails only that one. Requests on
-- distinct streams are decided and inserted set-wise; a group that touches one
-- stream twice goes through append_events_in_turn instead.
--
-- One row per event comes back: its request, the request's outcome, the
-- stream's version before the group, where a duplicate is already stored, and
-- the first position of the block the appended events were numbered from, in
-- request and event order (the caller counts its way through the block).
CREATE OR REPLACE FUNCTION append_events(
    p_request integer[], p_stream text[], p_expected integer[], p_id uuid[],
    p_type text[], p_schema_version integer[], p_occurred_on date[], p_countries text[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (request integer, outcome text, stream_version integer, found_position bigint,
    found_version integer, found_at timestamptz, first_position bigint, appended_at timestamptz)
LANGUAGE plpgsql
-- plpgsql caches a plan per session; one made while the log was nearly empty
-- picks sequential scans and keeps them as the log grows (one full scan per
-- append). Every lookup here has an index, so sequential scans are ruled out.
SET enable_seqscan = off
-- Otherwise plpgsql plans each statement with the call's arrays whenever the
-- generic plan's estimate looks worse, which it does here: a one-event append
-- then spent about half its time in the planner. The generic plans use the
-- indexes, so they are fine for 1 event and for 1,000.
SET plan_cache_mode = force_generic_plan
AS $$
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
          FROM batch_events(p_request, p_stream, p_expected, p_id, p_type, p_schema_version, p_occurred_on,
    p_countries, p_data, p_metadata) e
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
          FROM batch_events(p_request, p_stream, p_expected, p_id, p_type, p_schema_version, p_occurred_on,
    p_countries, p_data, p_metadata) e
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
