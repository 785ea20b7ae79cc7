-- The log's fast way in for groups that only open streams (new reports, batch
-- lines): every request expects version 0, and no stream or event id appears
-- twice in the group (the caller sends any other group to append_events).
--
-- Nothing is looked up first: the insert's own unique indexes on (stream,
-- version) and id find a stream or an event id the log already holds, and then
-- the whole insert is undone (the block is a subtransaction) and the group is
-- decided request by request by append_events, as any other group. The lookups
-- append_events makes for every event were about a fifth of an append's time,
-- and they repeat the search the unique indexes make anyway.
--
-- It answers as append_events does, in the same order, under the same lock.
-- A group that meets a stored stream or id costs its insert twice and leaves the
-- positions it drew as a hole; only the two unique constraints that mean "already
-- stored" send it to append_events: any other violation (a position the sequence
-- has already handed out, after a careless restore) fails the call as before.
-- Each call is a subtransaction: a batch of MAX_LINES lines makes MAX_LINES /
-- CHUNK_LINES (40) of them, under the 64 a transaction keeps without overflowing.
CREATE OR REPLACE FUNCTION append_new_streams(
    p_request integer[], p_stream text[], p_expected integer[], p_id uuid[],
    p_type text[], p_schema_version integer[], p_occurred_on date[], p_countries text[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (request integer, outcome text, stream_version integer, found_position bigint,
    found_version integer, found_at timestamptz, first_position bigint, appended_at timestamptz)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    total       integer := cardinality(p_id);
    first       bigint;
    at          timestamptz;
    constraint_ text;
BEGIN
    IF NOT coalesce(0 = ALL(p_expected), false) OR total = 0 THEN
        RAISE EXCEPTION 'append_new_streams takes only requests that expect version 0';
    END IF;
    PERFORM pg_advisory_xact_lock(1818585454, 1);  -- the log's ordering lock
    at := clock_timestamp();
    BEGIN
        first := nextval('events_position_seq');
        IF total > 1 THEN  -- safe only under the lock: nobody else draws meanwhile
            PERFORM setval('events_position_seq', first + total - 1);
        END IF;
        INSERT INTO events (position, id, stream, version, type, schema_version,
                            occurred_on, recorded_at, countries, data, metadata)
        SELECT first + e.i - 1, e.id, e.stream, e.n, e.type, e.schema_version,
               e.occurred_on, at, e.countries, e.data, e.metadata
          FROM batch_events(p_request, p_stream, p_expected, p_id, p_type, p_schema_version,
                            p_occurred_on, p_countries, p_data, p_metadata) e;
        -- Only a doorbell: it is delivered at commit; readers re-read by position.
        PERFORM pg_notify('legation_events', (first + total - 1)::text);
        RETURN QUERY
        SELECT u.request, 'appended'::text, 0, NULL::bigint, NULL::integer,
               NULL::timestamptz, first, at
          FROM unnest(p_request) AS u(request);
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS constraint_ = CONSTRAINT_NAME;
        IF constraint_ NOT IN ('events_id_key', 'events_stream_version_key') THEN
            RAISE;
        END IF;
        -- A stream or an id is already stored: the positions drawn stay a hole.
        RETURN QUERY SELECT * FROM append_events(
            p_request, p_stream, p_expected, p_id, p_type, p_schema_version,
            p_occurred_on, p_countries, p_data, p_metadata);
    END;
END
$$;
