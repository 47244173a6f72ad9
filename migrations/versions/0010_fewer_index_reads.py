"""keluarga's KK-number index covers the family id; conflicts lose their second visit_uuid index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00

The reconciliation worker asks which families hold each KK number of a batch; with the id in
the index that is answered by the index alone, not a read of each family's row. Conflicts are
unique per (visit_uuid, key), and that index serves every lookup by visit (and the cascade from
visits): the index on visit_uuid alone only cost each insert another index to update.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('keluarga', schema=None) as batch_op:
        batch_op.create_index('ix_keluarga_no_kk_id', ['no_kk', 'id'], unique=False)
        batch_op.drop_index('ix_keluarga_no_kk')
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.drop_index('ix_conflicts_visit_uuid')


def downgrade():
    with op.batch_alter_table('conflicts', schema=None) as batch_op:
        batch_op.create_index('ix_conflicts_visit_uuid', ['visit_uuid'], unique=False)
    with op.batch_alter_table('keluarga', schema=None) as batch_op:
        batch_op.create_index('ix_keluarga_no_kk', ['no_kk'], unique=False)
        batch_op.drop_index('ix_keluarga_no_kk_id')
