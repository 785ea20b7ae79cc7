"""The SQL functions as sql/ at the repository root holds them: one file each.

Revision ID: 0010
Revises: 0009

sql/ holds the current definition of every function the migrations made
(append_events as 0001 wrote it and 0007 tuned it), so it is read in one
place. Each file is a CREATE OR REPLACE of the very definition the database
already has, so this changes nothing: owner and grants are kept, and the
runtime role (0005) may still execute them. A test (test_sql_functions)
checks that the files match what 0009 left.

The downgrade leaves the functions alone: 0009 had the same ones.
"""

from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "sql"
FUNCTIONS = ("events_are_append_only", "batch_events", "append_events", "append_events_in_turn")


def upgrade() -> None:
    for name in FUNCTIONS:
        op.execute((SQL / f"{name}.sql").read_text())


def downgrade() -> None:
    pass
