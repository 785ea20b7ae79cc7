"""Subscriptions belong to the key that made them.

Revision ID: 0008
Revises: 0007

`owner` is the creating key's name. Rows made before owners existed keep NULL:
no `subscribe` key can tell they are its own, so only `admin` keys see them (an
admin may delete them, or set `owner` by hand to hand one to a key).

The runtime role's grants on `subscriptions` (0005) are table-wide, so they
cover the new column; the foreign key's check runs with the rights of
`api_keys`' owner, so the role needs nothing more on that table than 0006's
SELECT.

Secrets are sealed (encrypted) by the service at start-up, not here: a
migration does not know LEGATION_KEY_SECRET (see service/subscribers/sealing.py).
Downgrading does not unseal them.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OWNERS = """
ALTER TABLE subscriptions ADD COLUMN owner text REFERENCES api_keys (name);
CREATE INDEX subscriptions_by_owner ON subscriptions (owner, created_at, id);
"""


def upgrade() -> None:
    op.execute(OWNERS)


def downgrade() -> None:
    op.execute("DROP INDEX subscriptions_by_owner")
    op.execute("ALTER TABLE subscriptions DROP COLUMN owner")
