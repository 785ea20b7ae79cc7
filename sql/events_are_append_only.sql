-- Fired by the trigger events_append_only (migration 0001) before any UPDATE,
-- DELETE or TRUNCATE on events: the log is append-only.
CREATE OR REPLACE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'append a correction or a retraction instead';
END
$$;
