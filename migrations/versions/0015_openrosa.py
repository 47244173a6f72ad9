"""openrosa: device keys, stored XForms, staged submissions, and visits.channel

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 16:40:00

ODK Collect, KoboCollect and Enketo talk to ``/openrosa/key/<token>/...`` (docs/openrosa.md).
``visits.channel`` says how a visit arrived (``json`` or ``openrosa``); existing visits are
``json``. Nothing downstream reads it.
"""
import sqlalchemy as sa
from alembic import op

import sync.db  # noqa: F401  (UTCDateTime)

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=16), server_default='json',
                                      nullable=False))
    op.create_table(
        'openrosa_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sync.db.UTCDateTime(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sync.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index('ix_openrosa_keys_user', 'openrosa_keys', ['user_id'], unique=False)
    op.create_table(
        'openrosa_xforms',
        sa.Column('form_version_id', sa.Integer(), nullable=False),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
        sa.Column('md5', sa.String(length=32), nullable=False),
        sa.Column('created_at', sync.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['form_version_id'], ['form_versions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('form_version_id'),
    )
    op.create_table(
        'openrosa_submissions',
        sa.Column('instance_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('form_id', sa.String(length=64), nullable=False),
        sa.Column('form_version', sa.Integer(), nullable=False),
        sa.Column('xml', sa.LargeBinary(), nullable=False),
        sa.Column('xml_sha256', sa.String(length=64), nullable=False),
        sa.Column('device_id', sa.String(length=128), nullable=False),
        sa.Column('received_at', sync.db.UTCDateTime(), nullable=False),
        sa.Column('ingested_at', sync.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('instance_id'),
    )
    op.create_table(
        'openrosa_files',
        sa.Column('instance_id', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('received_at', sync.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['openrosa_submissions.instance_id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('instance_id', 'filename'),
    )


def downgrade():
    op.drop_table('openrosa_files')
    op.drop_table('openrosa_submissions')
    op.drop_table('openrosa_xforms')
    op.drop_index('ix_openrosa_keys_user', table_name='openrosa_keys')
    op.drop_table('openrosa_keys')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_column('channel')
