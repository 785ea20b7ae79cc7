"""Delivery leases, and an index to prune old delivery attempts by.

Revision ID: 0009
Revises: 0008

A worker claims a subscription's next event by setting `lease` (a token of its
own) and `leased_until` in a short transaction, POSTs with no transaction
open, then records the outcome only if `lease` is still its token. Another
worker takes the subscription over once `leased_until` has passed (the first
one crashed or hung), so delivery stays at-least-once and in log order.

The runtime role's grants on `subscriptions` and `deliveries` (0005) are
table-wide, so they cover the new columns and the pruning deletes.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

LEASES = """
ALTER TABLE subscriptions ADD COLUMN lease uuid, ADD COLUMN leased_until timestamptz;
CREATE INDEX deliveries_by_time ON deliveries (attempted_at);
"""


def upgrade() -> None:
    op.execute(LEASES)


def downgrade() -> None:
    op.execute("DROP INDEX deliveries_by_time")
    op.execute("ALTER TABLE subscriptions DROP COLUMN lease, DROP COLUMN leased_until")
