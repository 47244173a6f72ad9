"""shared_niks: the NIKs anggota holds on more than one family

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:00:00

The reconciliation worker looked up every NIK of a visit in the NIK index of anggota (4.5
million rows for a million families), a page read each, to find NIKs of other families. A NIK
of the family's own registry members can only be another family's too when it is in this
table, which the importer keeps (``sync.importer``); the migration fills it from anggota.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('shared_niks',
                    sa.Column('nik', sa.String(length=32), nullable=False),
                    sa.PrimaryKeyConstraint('nik', name=op.f('pk_shared_niks')))
    op.execute("INSERT INTO shared_niks (nik) SELECT nik FROM anggota WHERE nik IS NOT NULL "
               "GROUP BY nik HAVING count(DISTINCT keluarga_id) > 1")


def downgrade():
    op.drop_table('shared_niks')
