-- A group of append requests, sent as parallel arrays (one element per event:
-- asyncpg sends arrays in binary, far cheaper to take apart than one JSON
-- document), as rows: each event's place in the group (i) and in its request (n).
CREATE OR REPLACE FUNCTION batch_events(
    p_request integer[], p_stream text[], p_expected integer[], p_id uuid[],
    p_type text[], p_schema_version integer[], p_occurred_on date[], p_countries text[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (i integer, request integer, n integer, stream text, expected integer, id uuid,
               type text, schema_version integer, occurred_on date, countries text[],
               data jsonb, metadata jsonb)
LANGUAGE sql IMMUTABLE AS $$
    SELECT e.i::integer, e.request,
           (row_number() OVER (PARTITION BY e.request ORDER BY e.i))::integer,
           e.stream, e.expected, e.id, e.type, e.schema_version, e.occurred_on,
           string_to_array(e.countries, ','), e.data, e.metadata
      FROM unnest(p_request, p_stream, p_expected, p_id, p_type, p_schema_version, p_occurred_on,
    p_countries, p_data, p_metadata) WITH ORDINALITY
           AS e(request, stream, expected, id, type, schema_version, occurred_on,
                countries, data, metadata, i)
$$;
