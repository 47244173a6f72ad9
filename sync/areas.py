"""Loading Jakarta's administrative areas from the reference CSV shipped in ``data/``."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.models import Area

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
WILAYAH_CSV = DATA_DIR / "wilayah_dki.csv"
KELURAHAN_GEOJSON = DATA_DIR / "kelurahan_dki.geojson"
KECAMATAN_GEOJSON = DATA_DIR / "kecamatan_dki.geojson"

# The ten priority kecamatan for poverty reduction (Pemprov DKI, 2025).
PRIORITY_KECAMATAN = (
    "31.73.01",  # Cengkareng
    "31.73.06",  # Kalideres
    "31.73.04",  # Tambora
    "31.74.09",  # Jagakarsa
    "31.71.08",  # Johar Baru
    "31.75.03",  # Jatinegara
    "31.72.01",  # Penjaringan
    "31.72.05",  # Pademangan
    "31.72.02",  # Tanjung Priok
    "31.01.02",  # Kepulauan Seribu Selatan
)


def read_areas(path: Path = WILAYAH_CSV) -> list[dict]:
    """Rows of the reference CSV, parents before children."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [
            {
                "code": r["kode_kemendagri"],
                "bps_code": r["kode_bps"] or None,
                "name": r["nama"],
                "level": r["tingkat"],
                "parent_code": r["kode_induk"] or None,
            }
            for r in csv.DictReader(fh)
        ]
    return sorted(rows, key=lambda r: r["code"].count("."))


def load_areas(session: Session, path: Path = WILAYAH_CSV) -> dict[str, int]:
    """Insert missing areas and update changed ones; running it twice changes nothing."""
    existing = {a.code: a for a in session.scalars(select(Area))}
    inserted = updated = 0
    for row in read_areas(path):
        area = existing.get(row["code"])
        if area is None:
            session.add(Area(**row))
            session.flush()
            inserted += 1
        elif any(getattr(area, k) != v for k, v in row.items()):
            for key, value in row.items():
                setattr(area, key, value)
            updated += 1
    return {"inserted": inserted, "updated": updated, "total": len(existing) + inserted}
