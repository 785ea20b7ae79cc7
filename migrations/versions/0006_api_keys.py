"""API keys: a name, a keyed hash of the key (never the key), scopes, revocation.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEYS = """
CREATE TABLE api_keys (
    name       text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    key_hash   bytea       NOT NULL UNIQUE,
    scopes     text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'legation_runtime') THEN
        GRANT SELECT ON api_keys TO legation_runtime;
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.execute(KEYS)


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
