-- append_events decides every request of a group against the log as it was
-- before the group, so a group that touches one stream twice goes through here:
-- one request at a time, each seeing what the previous one wrote. (Were such a
-- group given to append_events, the unique (stream, version) would refuse it.)
CREATE OR REPLACE FUNCTION append_events_in_turn(
    p_request integer[], p_stream text[], p_expected integer[], p_id uuid[],
    p_type text[], p_schema_version integer[], p_occurred_on date[], p_countries text[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (request integer, outcome text, stream_version integer, found_position bigint,
    found_version integer, found_at timestamptz, first_position bigint, appended_at timestamptz)
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
