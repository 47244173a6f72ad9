"""round_state: rounds are open or closed; closing ends their open assignments

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 14:30:00

A round gets ``state`` (``open``, ``closed``), ``closed_at`` and ``closed_by``. Closing a round
sets its open assignments to the new status ``closed``; the partial unique index that keeps a
family open in one round at most now leaves out ``closed`` as well as ``done``, so the next
round can assign the same families. Existing rounds start open.
"""
import sqlalchemy as sa
from alembic import op

import sync.db

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OLD_WHERE = "status != 'done'"
NEW_WHERE = "status NOT IN ('done', 'closed')"


def upgrade():
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=8), server_default='open',
                                      nullable=False))
        batch_op.add_column(sa.Column('closed_at', sync.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.Integer(), nullable=True))
    # ``closed_by`` holds a user id without a foreign key: adding one would make SQLite copy
    # the rounds table, and dropping the old copy would cascade to every assignment.
    # Plain index statements (no table copy): the assignments table carries the progress
    # triggers of migration 0008, which a batch rebuild of the table would drop.
    op.drop_index('uq_assignments_open_household', table_name='assignments')
    op.create_index('uq_assignments_open_household', 'assignments', ['household_id'],
                    unique=True, sqlite_where=sa.text(NEW_WHERE),
                    postgresql_where=sa.text(NEW_WHERE))


def downgrade():
    op.execute("UPDATE assignments SET status = 'done' WHERE status = 'closed'")
    op.drop_index('uq_assignments_open_household', table_name='assignments')
    op.create_index('uq_assignments_open_household', 'assignments', ['household_id'],
                    unique=True, sqlite_where=sa.text(OLD_WHERE),
                    postgresql_where=sa.text(OLD_WHERE))
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('closed_by')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('state')
