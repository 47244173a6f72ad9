"""progress counters per area

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:30:00

"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import sync.db  # noqa: F401  (UTCDateTime)
from sqlalchemy import Text  # noqa: F401  (autogenerate writes JSONB(astext_type=Text()))
from sqlalchemy.dialects import postgresql  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
