"""The incidents' state as the service's own JSON bytes, not jsonb.

Revision ID: 0014
Revises: 0013

`incidents.state` is only ever read back whole, by the service, which decodes
it itself: no query looks inside it. As jsonb the server parsed and rebuilt
every state written, most of PostgreSQL's work in a rebuild and a good part of
each projected batch; as bytea it stores the bytes as they come. Existing rows
keep their content: jsonb's text form is JSON the service decodes alike.
The conversion rewrites the table under an exclusive lock: reads of incidents
and the projector wait for it (seconds per million incidents).
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE incidents ALTER COLUMN state TYPE bytea USING convert_to(state::text, 'UTF8')"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE incidents ALTER COLUMN state TYPE jsonb"
        " USING convert_from(state, 'UTF8')::jsonb"
    )
