"""Read models: the projector's checkpoint and the incidents table.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHECKPOINTS = """
CREATE TABLE projection_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoints (name, position) VALUES ('read_models', 0);
"""

# One row per incident as the projector last folded it: `state` is what it
# evolves on; the other columns are what lists filter and sort by.
INCIDENTS = """
CREATE TABLE incidents (
    id          uuid    PRIMARY KEY,
    kind        text    NOT NULL,
    status      text    NOT NULL,
    occurred_on date    NOT NULL,
    actors      text[]  NOT NULL,
    version     integer NOT NULL,
    position    bigint  NOT NULL,
    state       jsonb   NOT NULL
);
CREATE INDEX incidents_by_date ON incidents (occurred_on DESC, id DESC);
CREATE INDEX incidents_by_actor ON incidents USING gin (actors);
"""


def upgrade() -> None:
    op.execute(CHECKPOINTS)
    op.execute(INCIDENTS)


def downgrade() -> None:
    op.execute("DROP TABLE incidents")
    op.execute("DROP TABLE projection_checkpoints")
