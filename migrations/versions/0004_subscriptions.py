"""Webhook subscriptions and their delivery log.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# `position` is what the subscriber acknowledged (or what matched none of its
# filters): it only moves forward. `attempt` and `failing_since` describe the
# failures on the event after it; `next_attempt_at` is when to try again.
SUBSCRIPTIONS = """
CREATE TABLE subscriptions (
    id                 uuid        PRIMARY KEY,
    url                text        NOT NULL,
    secret             text        NOT NULL,
    types              text[]      NOT NULL DEFAULT '{}',
    countries          text[]      NOT NULL DEFAULT '{}',
    position           bigint      NOT NULL CHECK (position >= 0),
    active             boolean     NOT NULL DEFAULT true,
    attempt            integer     NOT NULL DEFAULT 0,
    failing_since      timestamptz,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    deactivated_reason text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_due ON subscriptions (next_attempt_at) WHERE active;
CREATE TABLE deliveries (
    id              bigserial   PRIMARY KEY,
    subscription_id uuid        NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    event_id        uuid        NOT NULL,
    position        bigint      NOT NULL,
    attempt         integer     NOT NULL,
    status_code     integer,
    latency_ms      integer     NOT NULL,
    error           text,
    next_retry_at   timestamptz,
    attempted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_by_subscription ON deliveries (subscription_id, id DESC);
"""


def upgrade() -> None:
    op.execute(SUBSCRIPTIONS)


def downgrade() -> None:
    op.execute("DROP TABLE deliveries")
    op.execute("DROP TABLE subscriptions")
