"""Incident versions: each content an incident had, between the log positions it was current.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Standings "as known at position N" aggregate the rows with
# valid_from <= N < coalesce(valid_to, infinity): a correction closes one row and
# opens another, a retraction only closes. `initiator`/`recipient` are the two
# roles of each kind (expelling/expelled, imposing/target, controller/previous).
VERSIONS = """
CREATE TABLE incident_versions (
    incident_id       uuid    NOT NULL,
    valid_from        bigint  NOT NULL,
    valid_to          bigint,
    reported_position bigint  NOT NULL,
    kind              text    NOT NULL,
    occurred_on       date    NOT NULL,
    initiator         text    NOT NULL,
    recipient         text,
    count             integer,
    round             integer,
    place_key         text,
    place             jsonb,
    actors            text[]  NOT NULL,
    responds_to       uuid[]  NOT NULL DEFAULT '{}',
    summary           text,
    PRIMARY KEY (incident_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX incident_versions_current ON incident_versions (incident_id) WHERE valid_to IS NULL;
CREATE INDEX incident_versions_actors ON incident_versions USING gin (actors);
"""


def upgrade() -> None:
    op.execute(VERSIONS)


def downgrade() -> None:
    op.execute("DROP TABLE incident_versions")
