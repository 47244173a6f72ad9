"""visit_photos: the capture time and GPS point a push's photos[] entry claims

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 17:00:00

The field app re-encodes photos on the phone, which drops their EXIF; each ``photos[]`` entry
of a push may then carry ``taken_at`` (RFC 3339 with offset) and ``location`` (``lat``,
``lon``, ``accuracy_m``). They are stored per visit photo, since one photo's bytes may be
referenced by several visits with different claims; the photo checks read them where the photo
has no EXIF (docs/photos.md, docs/reconciliation.md). All nullable: older rows have none.
"""
import sqlalchemy as sa
from alembic import op

import sync.db  # noqa: F401  (UTCDateTime)

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('visit_photos') as batch:
        batch.add_column(sa.Column('taken_at', sync.db.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('taken_at_device', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch.add_column(sa.Column('accuracy_m', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('visit_photos') as batch:
        for name in ('accuracy_m', 'lon', 'lat', 'taken_at_device', 'taken_at'):
            batch.drop_column(name)
