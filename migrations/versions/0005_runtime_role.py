"""A runtime role that may only INSERT and SELECT on the log.

Revision ID: 0005
Revises: 0004

`legation serve` can connect as `legation_runtime` (DATABASE_URL with that
user) once the database is migrated by a more privileged role. The role is
created only where the migrating role may create roles; elsewhere, run the
statements below as an administrator.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE = "legation_runtime"

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        IF (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            CREATE ROLE {ROLE} LOGIN;
        ELSE
            RAISE NOTICE 'cannot create role {ROLE}: ask an administrator (see 0005)';
            RETURN;
        END IF;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO {ROLE}', current_database());
    GRANT USAGE ON SCHEMA public TO {ROLE};
    -- The log: appended to and read, never changed (the trigger says so too).
    GRANT SELECT, INSERT ON events TO {ROLE};
    GRANT USAGE, UPDATE ON SEQUENCE events_position_seq TO {ROLE};
    -- Read models and subscriptions are the runtime's own to maintain.
    GRANT SELECT, INSERT, UPDATE, DELETE
        ON incidents, incident_versions, projection_checkpoints, subscriptions, deliveries
        TO {ROLE};
    GRANT USAGE ON SEQUENCE deliveries_id_seq TO {ROLE};
    GRANT SELECT ON alembic_version TO {ROLE};
END
$$;
"""


def upgrade() -> None:
    op.execute(CREATE_ROLE)


def downgrade() -> None:
    op.execute(
        f"""DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
            REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE};
            REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE};
            REVOKE ALL ON SCHEMA public FROM {ROLE};
        END IF; END $$;"""
    )
