"""supervisor review: decisions and their audit

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:30:00

"""
from alembic import op
import sqlalchemy as sa

import sync.db  # noqa: F401  (UTCDateTime)
from sqlalchemy import Text  # noqa: F401  (autogenerate writes JSONB(astext_type=Text()))
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('review_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('conflict_id', sa.Integer(), nullable=True),
    sa.Column('visit_uuid', sa.String(length=64), nullable=True),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('kecamatan', sa.String(length=8), nullable=False),
    sa.Column('kelurahan', sa.String(length=13), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=True),
    sa.Column('value', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('verified_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sync.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_review_decisions_actor_id_users')),
    sa.ForeignKeyConstraint(['conflict_id'], ['conflicts.id'], name=op.f('fk_review_decisions_conflict_id_conflicts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['keluarga.id'], name=op.f('fk_review_decisions_household_id_keluarga'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions'))
    )
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_review_decisions_conflict', ['conflict_id', 'id'], unique=False)
        batch_op.create_index('ix_review_decisions_household', ['household_id', 'id'], unique=False)
        batch_op.create_index('ix_review_decisions_visit', ['visit_uuid', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_decisions_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_decisions_created_at'))
        batch_op.drop_index('ix_review_decisions_visit')
        batch_op.drop_index('ix_review_decisions_household')
        batch_op.drop_index('ix_review_decisions_conflict')

    op.drop_table('review_decisions')
