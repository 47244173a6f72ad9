"""photos.received_at indexed, the phash band indexes dropped; anggota's NIK index covers
the family id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:40:00

Before each batch the reconciliation worker reads the photos received since its last batch
(``sync.reconcile.near_copies``); without this index that is a scan of every photo. That
index in memory replaces the three expression indexes on the phash's bands of 0006. The
NIK index of anggota gains ``keluarga_id``, so the worker's duplicate-NIK lookups (a few per
visit, in a table of millions of members) are answered by the index alone.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photos_received_at'), ['received_at'], unique=False)
    for i in range(1, 4):
        op.drop_index(f"ix_photos_phash_band{i}", table_name="photos")
    with op.batch_alter_table('anggota', schema=None) as batch_op:
        batch_op.create_index('ix_anggota_nik_keluarga', ['nik', 'keluarga_id'], unique=False)
        batch_op.drop_index('ix_anggota_nik')


def downgrade():
    with op.batch_alter_table('anggota', schema=None) as batch_op:
        batch_op.create_index('ix_anggota_nik', ['nik'], unique=False)
        batch_op.drop_index('ix_anggota_nik_keluarga')
    with op.batch_alter_table('photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photos_received_at'))
    for i in range(1, 4):
        op.create_index(f"ix_photos_phash_band{i}", "photos",
                        [sa.text(f"substr(phash, {4 * i + 1}, 4)")])
