"""The registry (DTSEN families and members, as delivered) and the verified record.

Two layers, kept apart:

* the **registry record**: ``keluarga`` and ``anggota`` hold the current extract in typed
  columns; ``keluarga_versions`` keeps every version an import delivered (a JSON snapshot in the
  extract's shape, its content hash, the import) so any family's history can be rebuilt;
* the **verified record**: ``verified_records`` holds one JSON document per family, in the
  extract's shape, with its own integer ``version`` (a phone's ``base_version``);
  ``verified_versions`` and ``verified_changes`` keep its history, one audit row per field.

Each typed column carries its extract path in ``info["path"]`` (``rumah.lantai``,
``anggota[].nik``): the importer, the generator, the CSV layout and the change paths all derive
the field list from here, so a field is added in one place. The code lists (Regsosek 2022) are in
``CODES`` below.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, JSONDoc, UTCDateTime, utcnow

# A JSON column where Python ``None`` is SQL NULL ("no issues", "no value"), so that
# ``IS NULL`` queries mean the same whether a row was written by the ORM or the bulk importer.
NullableJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# The source a registry-driven change of the verified record carries.
REGISTRY_SOURCE = "registry_import"


def _f(path: str, *args, **kw):
    """A column that is also an extract field, addressed by ``path``."""
    return mapped_column(*args, info={"path": path}, **kw)


class Import(Base):
    """One run of ``registry import``: what was read, from where, and what it did."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200))
    source_path: Mapped[str] = mapped_column(String(1000))
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    partial: Mapped[bool] = mapped_column(default=False)
    reject_path: Mapped[str | None] = mapped_column(String(1000))
    n_read: Mapped[int] = mapped_column(default=0)
    n_inserted: Mapped[int] = mapped_column(default=0)
    n_updated: Mapped[int] = mapped_column(default=0)
    n_unchanged: Mapped[int] = mapped_column(default=0)
    n_rejected: Mapped[int] = mapped_column(default=0)
    n_removed: Mapped[int] = mapped_column(default=0)
    n_members: Mapped[int] = mapped_column(default=0)
    n_flagged: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float | None] = mapped_column(Float)


class Keluarga(Base):
    """A family as the latest extract delivered it (typed); history is in ``keluarga_versions``."""

    __tablename__ = "keluarga"
    # With the id: the worker's KK-number lookups (which families hold it) need no table read.
    # The assignment page lists a kelurahan's first families by RW, RT and id: walked in index
    # order, it stops after a page instead of sorting every family (migration 0013).
    __table_args__ = (Index("ix_keluarga_no_kk_id", "no_kk", "id"),
                      Index("ix_keluarga_kelurahan_rw_rt", "kode_kelurahan", "rw", "rt", "id",
                            sqlite_where=text("removed_at IS NULL"),
                            postgresql_where=text("removed_at IS NULL")))

    id: Mapped[str] = _f("id_keluarga", String(64), primary_key=True)
    no_kk: Mapped[str | None] = _f("no_kk", String(32))
    kode_kelurahan: Mapped[str] = _f(
        "kode_kelurahan", String(13), ForeignKey("areas.code"), index=True
    )
    alamat: Mapped[str | None] = _f("alamat", String(300))
    rt: Mapped[str | None] = _f("rt", String(8))
    rw: Mapped[str | None] = _f("rw", String(8))
    lat: Mapped[float | None] = _f("lat", Float)
    lon: Mapped[float | None] = _f("lon", Float)
    desil: Mapped[int | None] = _f("desil", SmallInteger)
    # Block III, housing.
    rumah_status_bangunan: Mapped[int | None] = _f("rumah.status_bangunan", SmallInteger)
    rumah_luas_lantai_m2: Mapped[int | None] = _f("rumah.luas_lantai_m2", Integer)
    rumah_lantai: Mapped[int | None] = _f("rumah.lantai", SmallInteger)
    rumah_dinding: Mapped[int | None] = _f("rumah.dinding", SmallInteger)
    rumah_atap: Mapped[int | None] = _f("rumah.atap", SmallInteger)
    rumah_air_minum: Mapped[int | None] = _f("rumah.air_minum", SmallInteger)
    rumah_penerangan: Mapped[int | None] = _f("rumah.penerangan", SmallInteger)
    rumah_daya_va: Mapped[int | None] = _f("rumah.daya_va", Integer)
    rumah_bahan_bakar: Mapped[int | None] = _f("rumah.bahan_bakar", SmallInteger)
    rumah_fasilitas_bab: Mapped[int | None] = _f("rumah.fasilitas_bab", SmallInteger)
    rumah_njop_di_atas_1m: Mapped[bool | None] = _f("rumah.njop_di_atas_1m", Boolean)
    # Block V, assets.
    aset_mobil: Mapped[bool | None] = _f("aset.mobil", Boolean)
    aset_sepeda_motor: Mapped[bool | None] = _f("aset.sepeda_motor", Boolean)
    aset_lemari_es: Mapped[bool | None] = _f("aset.lemari_es", Boolean)
    aset_ac: Mapped[bool | None] = _f("aset.ac", Boolean)
    aset_emas_10g: Mapped[bool | None] = _f("aset.emas_10g", Boolean)
    aset_lahan: Mapped[bool | None] = _f("aset.lahan", Boolean)
    aset_rumah_lain: Mapped[bool | None] = _f("aset.rumah_lain", Boolean)
    # Block V, programs received.
    program_pkh: Mapped[bool | None] = _f("program.pkh", Boolean)
    program_bpnt: Mapped[bool | None] = _f("program.bpnt", Boolean)
    program_pbi_jk: Mapped[bool | None] = _f("program.pbi_jk", Boolean)
    program_bansos_daerah: Mapped[bool | None] = _f("program.bansos_daerah", Boolean)

    # Bookkeeping, not extract fields.
    no_kk_issues: Mapped[list | None] = mapped_column(NullableJSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    registry_version: Mapped[int] = mapped_column(default=1)
    first_import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    last_import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    # The last extract the family was in: families not seen by a full import are removed.
    last_seen_import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when a later import changed or removed the family: reconciliation looks again.
    registry_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Keluarga {self.id}>"


class Anggota(Base):
    """A member of a family in the latest extract; ``no_urut`` is the 1-based position."""

    __tablename__ = "anggota"
    # NIK -> family without reading the table: the duplicate-NIK checks ask it by the hundred.
    __table_args__ = (Index("ix_anggota_nik_keluarga", "nik", "keluarga_id"),)

    keluarga_id: Mapped[str] = mapped_column(
        ForeignKey("keluarga.id", ondelete="CASCADE"), primary_key=True
    )
    no_urut: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    nik: Mapped[str | None] = _f("anggota[].nik", String(32))
    nama: Mapped[str | None] = _f("anggota[].nama", String(200))
    jenis_kelamin: Mapped[str | None] = _f("anggota[].jenis_kelamin", String(1))
    tanggal_lahir: Mapped[dt.date | None] = _f("anggota[].tanggal_lahir", Date)
    hubungan: Mapped[int | None] = _f("anggota[].hubungan", SmallInteger)
    status_kawin: Mapped[int | None] = _f("anggota[].status_kawin", SmallInteger)
    pekerjaan: Mapped[int | None] = _f("anggota[].pekerjaan", SmallInteger)
    sekolah: Mapped[int | None] = _f("anggota[].sekolah", SmallInteger)
    disabilitas: Mapped[bool | None] = _f("anggota[].disabilitas", Boolean)
    penyakit_kronis: Mapped[bool | None] = _f("anggota[].penyakit_kronis", Boolean)
    # Identity check results (sync.identity), NULL when the NIK passed every check.
    nik_issues: Mapped[list | None] = mapped_column(NullableJSON)


class SharedNik(Base):
    """A NIK that ``anggota`` holds on more than one family; kept by the importer.

    The reconciliation worker asks which families hold each NIK of a visit. A NIK of the
    family's own registry members is held by that family alone unless it is here, so only
    these and the NIKs the family's extract does not hold need the 4.5 million-row NIK index.
    A NIK stays here when a later import leaves it on one family: it then only costs a lookup.
    """

    __tablename__ = "shared_niks"

    nik: Mapped[str] = mapped_column(String(32), primary_key=True)


class KeluargaVersion(Base):
    """One registry version of a family, as an import delivered it; never updated or deleted.

    ``kind`` is ``created``, ``changed``, ``removed`` (absent from a full extract; the snapshot is
    the last one delivered) or ``restored`` (back after a removal). ``changed_fields`` lists the
    change paths that differ from the previous version.
    """

    __tablename__ = "keluarga_versions"
    __table_args__ = (UniqueConstraint("keluarga_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    keluarga_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(12))
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[dict] = mapped_column(JSONDoc)
    changed_fields: Mapped[list | None] = mapped_column(NullableJSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VerifiedRecord(Base):
    """The verified record of a family: the registry record plus confirmed changes.

    ``local_changes`` is true once anything but the registry changed it; from then on a newer
    registry version is not taken in but noted in ``upstream_version`` (for the
    ``upstream_changed`` rule), and the changed paths are on that registry version.
    """

    __tablename__ = "verified_records"

    household_id: Mapped[str] = mapped_column(
        ForeignKey("keluarga.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(default=1)
    doc: Mapped[dict] = mapped_column(JSONDoc)
    registry_version: Mapped[int] = mapped_column(default=1)
    local_changes: Mapped[bool] = mapped_column(default=False)
    upstream_version: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VerifiedVersion(Base):
    """One version of a verified record: who or what made it, when, from which visit."""

    __tablename__ = "verified_versions"
    __table_args__ = (UniqueConstraint("household_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    version: Mapped[int]
    source: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    visit_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    registry_version: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    # The record as this version left it, written by ``apply_changes``; NULL for the versions
    # the importer writes, which equal the registry snapshot of ``registry_version``.
    doc: Mapped[dict | None] = mapped_column(NullableJSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class VerifiedChange(Base):
    """The audit entry of one changed field of a verified version: old and new value."""

    __tablename__ = "verified_changes"
    __table_args__ = (Index("ix_verified_changes_household_created", "household_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("verified_versions.id", ondelete="CASCADE"), index=True
    )
    household_id: Mapped[str] = mapped_column(ForeignKey("keluarga.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(200))
    old_value: Mapped[object | None] = mapped_column(NullableJSON)
    new_value: Mapped[object | None] = mapped_column(NullableJSON)
    # Copied from the version so that "changes since" is one indexed range scan.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# Regsosek 2022 codes, as used in the extract. Block III (housing), block IV (members), block V.
CODES: dict[str, dict[int, str]] = {
    "rumah.status_bangunan": {1: "milik sendiri", 2: "kontrak/sewa", 3: "bebas sewa",
                              4: "dinas", 5: "lainnya"},
    "rumah.lantai": {1: "marmer/granit", 2: "keramik", 3: "parket/vinil/karpet",
                     4: "ubin/tegel/teraso", 5: "kayu/papan", 6: "semen/bata merah", 7: "bambu",
                     8: "tanah", 9: "lainnya"},
    "rumah.dinding": {1: "tembok", 2: "plesteran anyaman bambu/kawat",
                      3: "kayu/papan/gypsum/GRC/calciboard", 4: "anyaman bambu",
                      5: "batang kayu", 6: "bambu", 7: "lainnya"},
    "rumah.atap": {1: "beton", 2: "genteng", 3: "seng", 4: "asbes", 5: "bambu",
                   6: "kayu/sirap", 7: "jerami/ijuk/daun/rumbia", 8: "lainnya"},
    "rumah.air_minum": {1: "air kemasan bermerek", 2: "air isi ulang", 3: "leding",
                        4: "sumur bor/pompa", 5: "sumur terlindung", 6: "sumur tak terlindung",
                        7: "mata air terlindung", 8: "mata air tak terlindung",
                        9: "air permukaan", 10: "air hujan", 11: "lainnya"},
    "rumah.penerangan": {1: "listrik PLN dengan meteran", 2: "listrik PLN tanpa meteran",
                         3: "listrik non-PLN", 4: "bukan listrik"},
    "rumah.bahan_bakar": {0: "tidak memasak di rumah", 1: "listrik", 2: "elpiji 5,5 kg",
                          3: "elpiji 12 kg", 4: "elpiji 3 kg", 5: "gas kota", 6: "biogas",
                          7: "minyak tanah", 8: "briket", 9: "arang", 10: "kayu bakar",
                          11: "lainnya"},
    "rumah.fasilitas_bab": {1: "ada, dipakai sendiri", 2: "ada, bersama rumah tangga tertentu",
                            3: "ada, MCK komunal", 4: "ada, MCK umum",
                            5: "ada, tidak dipakai", 6: "tidak ada"},
    "anggota[].hubungan": {1: "kepala keluarga", 2: "istri/suami", 3: "anak",
                           4: "menantu", 5: "cucu", 6: "orang tua/mertua",
                           7: "pembantu/sopir", 8: "lainnya"},
    "anggota[].status_kawin": {1: "belum kawin", 2: "kawin", 3: "cerai hidup", 4: "cerai mati"},
    "anggota[].pekerjaan": {0: "tidak bekerja", 1: "berusaha sendiri",
                            2: "berusaha dibantu buruh tidak tetap",
                            3: "berusaha dibantu buruh tetap", 4: "buruh/karyawan swasta",
                            5: "PNS/TNI/Polri/BUMN/BUMD", 6: "pekerja bebas pertanian",
                            7: "pekerja bebas nonpertanian", 8: "pekerja keluarga"},
    "anggota[].sekolah": {0: "tidak/belum pernah sekolah", 1: "masih sekolah",
                          2: "tidak bersekolah lagi"},
}

# Item 418 code for PNS/TNI/Polri/BUMN/BUMD: an exclusion criterion for aid.
PEKERJAAN_PNS = 5


def _fields(model) -> list[tuple[str, str, type]]:
    return [
        (c.info["path"], c.name, c.type.python_type)
        for c in model.__table__.columns
        if "path" in c.info
    ]


# (path, column, python type) of every extract field, in the extract's order.
FAMILY_FIELDS: list[tuple[str, str, type]] = _fields(Keluarga)
MEMBER_FIELDS: list[tuple[str, str, type]] = [
    (path.removeprefix("anggota[]."), col, typ) for path, col, typ in _fields(Anggota)
]
