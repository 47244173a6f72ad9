"""openrosa_media: each enumerator's prefill CSVs, cached by the state of their feed

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 17:00:00

The manifest and the media downloads of ``/openrosa/key/<token>/forms/<id>/<version>/`` serve
``households.csv`` and ``members.csv`` built from the enumerator's open assignments. A row here
holds those bytes and their md5 with the ``state`` they were built at (the enumerator's newest
change-feed seq, the feed's epoch and compaction point, the CSV format); a request whose state
differs builds them again, so a stale row is never served (docs/openrosa.md). ``rows`` indexes
each family's rows in the bytes (with a digest of what they were built from), so that a rebuild
runs ``prefill_csvs`` only for the families that changed.
"""
import sqlalchemy as sa
from alembic import op

import sync.db  # noqa: F401  (UTCDateTime)

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'openrosa_media',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('form_version_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=128), nullable=False),
        sa.Column('households', sa.LargeBinary(), nullable=False),
        sa.Column('members', sa.LargeBinary(), nullable=False),
        sa.Column('households_md5', sa.String(length=32), nullable=False),
        sa.Column('members_md5', sa.String(length=32), nullable=False),
        sa.Column('rows', sa.Text(), nullable=True),
        sa.Column('built_at', sync.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['form_version_id'], ['form_versions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'form_version_id'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        # CSV bytes already cached: storing them uncompressed spares each rebuild's write the
        # compression (about 2 ms for an enumerator's 190 KB).
        op.execute('ALTER TABLE openrosa_media ALTER COLUMN households SET STORAGE EXTERNAL, '
                   'ALTER COLUMN members SET STORAGE EXTERNAL')


def downgrade():
    op.drop_table('openrosa_media')
