"""Administrative areas of DKI Jakarta: province, kabupaten/kota, kecamatan, kelurahan."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base

LEVELS = ("provinsi", "kabkota", "kecamatan", "kelurahan")


class Area(Base):
    """One area, keyed by its dotted Kemendagri code (the code NIK and KK numbers carry)."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    bps_code: Mapped[str | None] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)

    def __repr__(self) -> str:
        return f"<Area {self.code} {self.name}>"
