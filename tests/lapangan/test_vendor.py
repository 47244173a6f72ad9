"""The vendored JavaScript (tools/vendor_js.py) matches its manifest, with no network."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "server" / "static" / "lapangan" / "vendor"


def test_vendor_check_passes_offline():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "vendor_js.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr


def test_manifest_names_pinned_versions_and_licences():
    manifest = json.loads((VENDOR / "vendor.json").read_text())
    by_name = {p["name"]: p for p in manifest["packages"]}
    assert set(by_name) == {"idb", "json-logic-js"}
    for p in by_name.values():
        assert p["integrity"].startswith("sha512-")
        assert (VENDOR / p["license_file"]).read_text().strip()
    assert by_name["json-logic-js"]["wrapped"] is True
    assert by_name["idb"]["wrapped"] is False
    wrapped = (VENDOR / by_name["json-logic-js"]["file"]).read_text()
    assert "export { jsonLogic }" in wrapped


def test_check_notices_a_changed_file(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import vendor_js
    finally:
        sys.path.pop(0)
    copy = tmp_path / "vendor"
    import shutil

    shutil.copytree(VENDOR, copy)
    monkeypatch.setattr(vendor_js, "VENDOR", copy)
    monkeypatch.setattr(vendor_js, "MANIFEST", copy / "vendor.json")
    assert vendor_js.check() == []
    (copy / "idb" / "index.js").write_text("// tampered\n")
    assert any("idb/index.js" in p for p in vendor_js.check())
