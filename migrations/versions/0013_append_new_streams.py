"""append_new_streams: groups that only open streams append without looking up first.

Revision ID: 0013
Revises: 0012

sql/append_new_streams.sql holds the function and says why it is faster. It
falls back to append_events (unchanged) whenever a stream or an event id is
already stored, so every answer is the one append_events would give. Like the
other functions it may be executed by PUBLIC, so the runtime role (0005) may
call it. The service calls it from this revision on: migrate before starting
servers of this version.
"""

from pathlib import Path

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "sql" / "append_new_streams.sql"
ARG_TYPES = (
    "integer[], text[], integer[], uuid[], text[], integer[], date[], text[], jsonb[], jsonb[]"
)


def upgrade() -> None:
    op.execute(SQL.read_text())


def downgrade() -> None:
    op.execute(f"DROP FUNCTION append_new_streams({ARG_TYPES})")
