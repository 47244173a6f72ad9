"""``flask demo generate`` and ``flask registry import`` end to end."""

import json

from sqlalchemy import select

from sync.models import Anggota, Import, Keluarga
from tests.registry.conftest import count


def test_generate_then_import_then_import_again(runner, db, tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(args=["demo", "generate", "--households", "80", "--seed", "2",
                                 "--out", str(out), "--format", "both", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "80 families" in result.output
    for name in ("keluarga.jsonl", "keluarga.csv", "anggota.csv", "anomalies.jsonl"):
        assert (out / name).exists()

    result = runner.invoke(args=["registry", "import", str(out / "keluarga.jsonl"),
                                 "--label", "demo", "--rejects", str(tmp_path / "rej.jsonl")])
    assert result.exit_code == 0, result.output
    assert "read 80, inserted 80, updated 0, unchanged 0, rejected 0, removed 0" in result.output
    assert count(db, Keluarga) == 80 and count(db, Anggota) > 300
    assert db.scalar(select(Import.label)) == "demo"
    # Identity flags exactly for the planted invalid identities.
    planted = [json.loads(line) for line in open(out / "anomalies.jsonl")]
    invalid = {a["id_keluarga"] for a in planted if a["conflict_kind"] == "invalid_identity"}
    flagged = set(db.scalars(select(Anggota.keluarga_id).where(Anggota.nik_issues.is_not(None))))
    assert flagged == invalid

    result = runner.invoke(args=["registry", "import", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["read"], summary["unchanged"], summary["inserted"]) == (80, 80, 0)
    assert not (tmp_path / "rej.jsonl").exists()


def test_an_unreadable_extract_is_a_clean_error(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(args=["registry", "import", str(tmp_path / "empty")])
    assert result.exit_code != 0
    assert "keluarga.csv is missing" in result.output
    result = runner.invoke(args=["demo", "generate", "--households", "3", "--out",
                                 str(tmp_path / "x"), "--kecamatan", "31.99.01",
                                 "--no-progress"])
    assert result.exit_code != 0 and "31.99.01" in result.output
