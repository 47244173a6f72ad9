"""The streaming import: rejects, flags, idempotence, versions and history, CSV = JSON Lines."""

import copy
import json

import pytest
from sqlalchemy import delete, select

from sync.db import write_transaction
from sync.generator import write_extract
from sync.importer import ExtractError, import_extract
from sync.models import (
    Anggota,
    Import,
    Keluarga,
    KeluargaVersion,
    VerifiedChange,
    VerifiedRecord,
    VerifiedVersion,
)
from sync.registry import apply_changes, household_history
from tests.registry.conftest import count, write_jsonl

REGISTRY_TABLES = (VerifiedChange, VerifiedVersion, VerifiedRecord, KeluargaVersion, Anggota,
                   Keluarga, Import)


def run(db, path, tmp_path, **kw):
    kw.setdefault("rejects", tmp_path / "rejects.jsonl")
    return import_extract(db, path, **kw)


def rejects(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_good_lines_are_imported_and_each_bad_line_is_rejected_with_its_reason(db, tmp_path,
                                                                               families):
    good = families[:20]
    unknown_area = dict(copy.deepcopy(families[20]), kode_kelurahan="31.99.99.9999")
    bad_value = dict(copy.deepcopy(families[21]), desil="dua")
    bad_member = copy.deepcopy(families[22])
    bad_member["anggota"][1]["tanggal_lahir"] = "1985-02-30"
    lines = [
        *good[:10],
        "{not json",                               # line 11
        "[1, 2, 3]",                               # 12
        {"no_kk": "3173011203150005"},             # 13: no id
        "",                                        # 14: blank, skipped
        unknown_area,                              # 15
        bad_value,                                 # 16
        bad_member,                                # 17
        good[0],                                   # 18: the same id again
        *good[10:],
    ]
    path = write_jsonl(tmp_path / "extract.jsonl", lines)
    summary = run(db, path, tmp_path, batch_size=7)

    assert (summary.read, summary.inserted, summary.rejected) == (27, 20, 7)
    assert count(db, Keluarga) == 20
    assert count(db, Anggota) == sum(len(f["anggota"]) for f in good)
    got = [(r["line"], r["reason"], r["detail"], r["id"]) for r in rejects(summary.reject_path)]
    assert got == [
        (11, "not_json", None, None),
        (12, "not_object", None, None),
        (13, "missing_id", None, None),
        (15, "unknown_kelurahan", None, unknown_area["id_keluarga"]),
        (16, "invalid_value", "desil", bad_value["id_keluarga"]),
        (17, "invalid_value", "anggota[1].tanggal_lahir", bad_member["id_keluarga"]),
        (18, "duplicate_id", None, good[0]["id_keluarga"]),
    ]
    # Where and why, never the contents: no NIK, KK number or name reaches the reject file.
    text = open(summary.reject_path, encoding="utf-8").read()
    for family in (unknown_area, bad_value, bad_member):
        assert family["no_kk"] not in text
        assert all(m["nik"] not in text and m["nama"] not in text for m in family["anggota"])
    imp = db.get(Import, summary.import_id)
    assert (imp.status, imp.n_inserted, imp.n_rejected, imp.reject_path) == (
        "done", 20, 7, summary.reject_path)


def test_invalid_niks_are_imported_and_flagged_not_dropped(db, tmp_path, families):
    family = copy.deepcopy(families[0])
    family["anggota"][0]["nik"] = family["anggota"][0]["nik"][:12] + "0000"
    family["anggota"][1]["jenis_kelamin"] = (
        "P" if family["anggota"][1]["jenis_kelamin"] == "L" else "L")
    family["anggota"].append(dict(family["anggota"][2]))
    family["no_kk"] = "12345"
    path = write_jsonl(tmp_path / "x.jsonl", [family])
    summary = run(db, path, tmp_path)
    assert (summary.inserted, summary.rejected, summary.flagged) == (1, 0, 1)
    members = db.scalars(select(Anggota).order_by(Anggota.no_urut)).all()
    assert [m.no_urut for m in members] == list(range(1, len(family["anggota"]) + 1))
    issues = [[i["code"] for i in m.nik_issues or []] for m in members]
    assert issues[0] == ["nik_serial_zero"]
    assert issues[1] == ["nik_sex_mismatch"]
    assert issues[2] == issues[-1] == ["nik_duplicate_in_family"]
    assert [i["code"] for i in db.scalar(select(Keluarga.no_kk_issues))] == ["kk_wrong_length"]


def test_reimporting_the_same_extract_changes_nothing(db, tmp_path, families):
    path = write_jsonl(tmp_path / "x.jsonl", families)
    first = run(db, path, tmp_path)
    before = snapshot_tables(db)
    again = run(db, path, tmp_path)
    assert (again.read, again.inserted, again.updated, again.unchanged, again.removed) == (
        60, 0, 0, 60, 0)
    assert snapshot_tables(db) == before
    assert count(db, KeluargaVersion) == count(db, VerifiedVersion) == 60
    assert first.inserted == 60


def dump(db, model, *skip):
    columns = [c for c in model.__table__.columns if c.name not in skip]
    rows = db.execute(select(*columns)).all()
    return sorted((tuple(r) for r in rows), key=repr)


def snapshot_tables(db):
    """Everything an import wrote, but the bookkeeping that says which run saw a family."""
    return {
        "keluarga": dump(db, Keluarga, "last_seen_import_id"),
        "anggota": dump(db, Anggota),
        "versions": dump(db, KeluargaVersion),
        "verified": dump(db, VerifiedRecord),
        "verified_versions": dump(db, VerifiedVersion),
    }


def content(db):
    """The registry's content, free of ids, times and import numbers."""
    return {
        "keluarga": dump(db, Keluarga, "created_at", "first_import_id", "last_import_id",
                         "last_seen_import_id"),
        "anggota": dump(db, Anggota),
        "versions": dump(db, KeluargaVersion, "id", "created_at", "import_id"),
        "verified": dump(db, VerifiedRecord, "updated_at"),
    }


def wipe(db):
    with write_transaction(db):
        for model in REGISTRY_TABLES:
            db.execute(delete(model))


def test_csv_and_json_lines_produce_the_same_database(db, tmp_path, families):
    paths = write_extract(families, tmp_path / "extract", "both")
    run(db, paths["jsonl"], tmp_path)
    from_jsonl = content(db)
    wipe(db)
    summary = run(db, tmp_path / "extract", tmp_path)
    assert (summary.read, summary.inserted, summary.rejected) == (60, 60, 0)
    assert content(db) == from_jsonl
    # And each format sees the other's import as unchanged.
    assert run(db, paths["jsonl"], tmp_path).unchanged == 60


def test_a_changed_extract_creates_versions_and_keeps_history(db, tmp_path, families):
    base = families[:30]
    run(db, write_jsonl(tmp_path / "v1.jsonl", base), tmp_path, label="2025-06")
    v1_hash = db.scalar(select(Keluarga.content_hash).where(Keluarga.id == base[1]["id_keluarga"]))

    changed = copy.deepcopy(base)
    changed[1]["desil"] = changed[1]["desil"] % 10 + 1
    changed[2]["rumah"]["lantai"] = 1
    changed[2]["anggota"][0]["pekerjaan"] = 7
    dropped_member = changed[3]["anggota"].pop()
    gone = changed.pop(4)  # absent from the new extract
    newcomer = families[40]
    summary = run(db, write_jsonl(tmp_path / "v2.jsonl", [*changed, newcomer]), tmp_path,
                  label="2025-12")
    assert (summary.read, summary.inserted, summary.updated, summary.unchanged,
            summary.removed) == (30, 1, 3, 26, 1)

    def versions(fid):
        return db.scalars(select(KeluargaVersion).where(KeluargaVersion.keluarga_id == fid)
                          .order_by(KeluargaVersion.version)).all()

    v = versions(base[1]["id_keluarga"])
    assert [(x.version, x.kind, x.changed_fields) for x in v] == [
        (1, "created", None), (2, "changed", ["desil"])]
    assert v[0].content_hash == v1_hash and v[0].snapshot["desil"] == base[1]["desil"]
    head = f"anggota[NIK={base[2]['anggota'][0]['nik']}]"
    assert versions(base[2]["id_keluarga"])[1].changed_fields == [
        "rumah.lantai", f"{head}.pekerjaan"]
    assert versions(base[3]["id_keluarga"])[1].changed_fields == [
        f"anggota[NIK={dropped_member['nik']}]"]
    removed = versions(gone["id_keluarga"])
    assert [(x.kind, x.snapshot == removed[0].snapshot) for x in removed] == [
        ("created", True), ("removed", True)]
    kel = db.get(Keluarga, gone["id_keluarga"])
    assert kel.removed_at is not None and kel.registry_changed_at is not None
    assert db.get(Keluarga, base[1]["id_keluarga"]).registry_changed_at is not None
    assert db.get(Keluarga, base[5]["id_keluarga"]).registry_changed_at is None
    assert db.get(Keluarga, base[3]["id_keluarga"]).registry_version == 2
    assert count(db, Anggota) == sum(len(f["anggota"]) for f in [*changed, newcomer, gone])

    # No local changes: the verified record followed, with an audit row per changed path.
    record = db.get(VerifiedRecord, base[2]["id_keluarga"])
    assert (record.version, record.registry_version) == (2, 2)
    assert record.doc["rumah"]["lantai"] == 1
    audit = db.execute(select(VerifiedChange.path, VerifiedChange.old_value,
                              VerifiedChange.new_value)
                       .where(VerifiedChange.household_id == base[2]["id_keluarga"])
                       .order_by(VerifiedChange.id)).all()
    assert [tuple(a) for a in audit] == [
        ("rumah.lantai", base[2]["rumah"]["lantai"], 1),
        (f"{head}.pekerjaan", base[2]["anggota"][0]["pekerjaan"], 7),
    ]
    history = household_history(db, base[2]["id_keluarga"])
    assert [(h["layer"], h["version"]) for h in history] == [
        ("registry", 1), ("verified", 1), ("registry", 2), ("verified", 2)]
    assert [h["import_label"] for h in history if h["layer"] == "registry"] == [
        "2025-06", "2025-12"]
    assert history[3]["source"] == "registry_import"

    # The family comes back in a later full extract: a "restored" version, nothing lost.
    again = run(db, write_jsonl(tmp_path / "v3.jsonl", [*changed, newcomer, gone]), tmp_path)
    assert (again.updated, again.unchanged, again.removed) == (1, 30, 0)
    back = versions(gone["id_keluarga"])
    assert [(x.version, x.kind, x.changed_fields) for x in back] == [
        (1, "created", None), (2, "removed", None), (3, "restored", [])]
    assert db.get(Keluarga, gone["id_keluarga"]).removed_at is None
    assert db.get(VerifiedRecord, gone["id_keluarga"]).registry_version == 3


def test_local_changes_are_kept_and_the_upstream_change_is_noted(db, tmp_path, families):
    base = families[:5]
    run(db, write_jsonl(tmp_path / "v1.jsonl", base), tmp_path)
    fid = base[0]["id_keluarga"]
    with write_transaction(db):
        apply_changes(db, fid, {"rumah.lantai": 2}, source="visit", actor_id=None,
                      visit_uuid="0b8f7c1e-0000-4000-8000-000000000001")
    changed = copy.deepcopy(base)
    changed[0]["desil"] = changed[0]["desil"] % 10 + 1
    changed[0]["rumah"]["lantai"] = 8
    summary = run(db, write_jsonl(tmp_path / "v2.jsonl", changed), tmp_path)
    assert summary.updated == 1
    record = db.get(VerifiedRecord, fid)
    assert (record.version, record.local_changes, record.registry_version,
            record.upstream_version) == (2, True, 1, 2)
    assert record.doc["rumah"]["lantai"] == 2 and record.doc["desil"] == base[0]["desil"]
    latest = db.scalar(select(KeluargaVersion).where(KeluargaVersion.keluarga_id == fid,
                                                     KeluargaVersion.version == 2))
    assert latest.changed_fields == ["desil", "rumah.lantai"]


def test_a_partial_extract_removes_nobody(db, tmp_path, families):
    run(db, write_jsonl(tmp_path / "all.jsonl", families[:10]), tmp_path)
    summary = run(db, write_jsonl(tmp_path / "part.jsonl", families[:3]), tmp_path,
                  partial=True)
    assert (summary.unchanged, summary.removed) == (3, 0)
    assert db.scalar(select(Keluarga.id).where(Keluarga.removed_at.is_not(None))) is None


def test_csv_members_without_a_family_are_rejected(db, tmp_path, families):
    directory = tmp_path / "csv"
    write_extract(families[:5], directory, "csv")
    lines = (directory / "anggota.csv").read_text().splitlines()
    orphan = lines[1].split(",", 1)[1]
    lines.insert(1, "KLG-0000000000000," + orphan)   # sorts before every family
    lines.append("KLG-9999999999999," + orphan)       # after every family
    (directory / "anggota.csv").write_text("\n".join(lines) + "\n")
    summary = run(db, directory, tmp_path)
    assert (summary.read, summary.inserted, summary.rejected) == (5, 5, 2)
    assert [(r["file"], r["line"], r["reason"], r["id"]) for r in rejects(summary.reject_path)] == [
        ("anggota.csv", 2, "member_without_family", "KLG-0000000000000"),
        ("anggota.csv", len(lines), "member_without_family", "KLG-9999999999999"),
    ]
    assert count(db, Anggota) == sum(len(f["anggota"]) for f in families[:5])


def test_an_unsorted_or_incomplete_csv_extract_is_refused_before_writing(db, tmp_path, families):
    directory = tmp_path / "csv"
    write_extract(families[:5], directory, "csv")
    header, *rows = (directory / "keluarga.csv").read_text().splitlines()
    (directory / "keluarga.csv").write_text("\n".join([header, *reversed(rows)]) + "\n")
    with pytest.raises(ExtractError, match="not sorted"):
        run(db, directory, tmp_path)
    (directory / "anggota.csv").unlink()
    with pytest.raises(ExtractError, match="missing"):
        run(db, directory, tmp_path)
    assert count(db, Import) == 0


def test_an_import_under_way_shows_its_counts_so_far(db, tmp_path, families, monkeypatch):
    """Each batch commits its counts with it, so /metrics and the import list show a long
    import's progress: read between batches, the import's row has the families read so far."""
    import sync.importer as importer

    path = write_jsonl(tmp_path / "extract.jsonl", families)
    seen = []
    read = importer.read_extract

    def reading_and_watching(p):
        fmt, items = read(p)

        def watched():
            for i, item in enumerate(items):
                if i and i % 20 == 0:  # a batch of 20 has just been committed
                    imp = db.scalars(select(Import).order_by(Import.id.desc())).first()
                    db.refresh(imp)
                    seen.append((imp.status, imp.n_read, imp.n_inserted))
                yield item
        return fmt, watched()

    monkeypatch.setattr(importer, "read_extract", reading_and_watching)
    summary = run(db, path, tmp_path, batch_size=20)
    assert summary.read == 60
    assert seen == [("running", 20, 20), ("running", 40, 40)]
