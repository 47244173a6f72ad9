"""job_runs: the scheduler's job runs and failures, for /metrics

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 19:00:00

The scheduler runs in a process of its own (maybe on another machine) and restarts; the web
worker that answers a Prometheus scrape reads its runs here (``server.metrics.jobs``). One row
a job, with counts that only grow.
"""
import sqlalchemy as sa
from alembic import op

import sync.db  # noqa: F401  (UTCDateTime)

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_runs',
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('runs', sa.BigInteger(), nullable=False),
        sa.Column('failures', sa.BigInteger(), nullable=False),
        sa.Column('last_run_at', sync.db.UTCDateTime(), nullable=True),
        sa.Column('last_success_at', sync.db.UTCDateTime(), nullable=True),
        sa.Column('last_failure_at', sync.db.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint('job_id'),
    )


def downgrade():
    op.drop_table('job_runs')
