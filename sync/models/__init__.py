"""Tables of the core. Import this package to register every model on ``Base.metadata``."""

from sync.models.area import Area
from sync.models.form import FormVersion
from sync.models.registry import (
    Anggota,
    Import,
    Keluarga,
    KeluargaVersion,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
)

__all__ = [
    "Area", "FormVersion",
    "Anggota", "Import", "Keluarga", "KeluargaVersion", "VerifiedChange", "VerifiedRecord",
    "VerifiedVersion",
]
