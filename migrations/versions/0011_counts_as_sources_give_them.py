"""Incident versions hold an expulsion's range of counts and its joint parties.

Revision ID: 0011
Revises: 0010

Version 2 of expulsion.reported lets a report give no count, a range with an
open high end, and joint parties on either side. Version 1 events could already
give a range ([low, high] around the count), which the read model did not keep:
the upgrade reads it back from the event each version row was made from, so the
standings show it without a rebuild. Version 1 had no joint parties.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = """
ALTER TABLE incident_versions
    ADD COLUMN count_low        integer,
    ADD COLUMN count_high       integer,
    ADD COLUMN joint_initiators text[] NOT NULL DEFAULT '{}',
    ADD COLUMN joint_recipients text[] NOT NULL DEFAULT '{}'
"""
# A version row starts at the position of the event whose content it holds:
# the report, or a correction holding the whole incident as corrected.
RANGES = """
UPDATE incident_versions v
   SET count_low = (e.content->'count_range'->>0)::integer,
       count_high = (e.content->'count_range'->>1)::integer
  FROM (SELECT position,
               CASE WHEN type = 'incident.corrected' THEN data->'incident' ELSE data END
                   AS content
          FROM events WHERE type IN ('expulsion.reported', 'incident.corrected')) e
 WHERE v.kind = 'expulsion' AND e.position = v.valid_from
   AND jsonb_typeof(e.content->'count_range') = 'array'
"""


def upgrade() -> None:
    op.execute(COLUMNS)
    op.execute(RANGES)


def downgrade() -> None:
    op.execute(
        "ALTER TABLE incident_versions DROP COLUMN count_low, DROP COLUMN count_high,"
        " DROP COLUMN joint_initiators, DROP COLUMN joint_recipients"
    )
