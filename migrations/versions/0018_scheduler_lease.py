"""scheduler_lease: one scheduler leads across machines

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 18:40:00

When several machines run ``flask --app server scheduler run``, only the holder of the lease
runs jobs (``sync.leader``). On SQLite the row is the lock: renewed by its holder, taken over
once ``expires_at`` has passed. On PostgreSQL the lock is a session advisory lock and the row
records who holds it.
"""
import sqlalchemy as sa
from alembic import op

import sync.db  # noqa: F401  (UTCDateTime)

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scheduler_lease',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('acquired_at', sync.db.UTCDateTime(), nullable=False),
        sa.Column('renewed_at', sync.db.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sync.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade():
    op.drop_table('scheduler_lease')
