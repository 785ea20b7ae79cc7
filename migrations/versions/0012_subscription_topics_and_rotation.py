"""Subscriptions: topics, a cursor within a position, changes that supersede a lease,
a previous secret during rotation; deliveries name the message they sent.

Revision ID: 0012
Revises: 0011

`topics` says what a subscription receives: the log's events, the standings they
changed (several notifications at one position), or both. `part` counts the
messages of the position after `position` already acknowledged, so a receiver
never gets one twice nor skips one when a position holds several. `epoch` grows
whenever a PATCH moves the cursor or changes what is sent where: a delivery in
flight under the old settings then gives its lease back without moving the
cursor. `previous_secret` (sealed like `secret`) signs deliveries beside the new
one until `previous_secret_until`.

The runtime role's grants on both tables (0005) are table-wide, so they cover
the new columns.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = """
ALTER TABLE subscriptions
    ADD COLUMN topics                text[]  NOT NULL DEFAULT '{events}',
    ADD COLUMN part                  integer NOT NULL DEFAULT 0 CHECK (part >= 0),
    ADD COLUMN epoch                 integer NOT NULL DEFAULT 0,
    ADD COLUMN previous_secret       text,
    ADD COLUMN previous_secret_until timestamptz;
ALTER TABLE deliveries
    ADD COLUMN message_id uuid,
    ADD COLUMN type       text;
"""


def upgrade() -> None:
    op.execute(COLUMNS)


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries DROP COLUMN message_id, DROP COLUMN type")
    op.execute(
        "ALTER TABLE subscriptions DROP COLUMN topics, DROP COLUMN part, DROP COLUMN epoch,"
        " DROP COLUMN previous_secret, DROP COLUMN previous_secret_until"
    )
