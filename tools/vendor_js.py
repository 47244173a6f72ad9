"""Vendor the field app's JavaScript libraries from the npm registry, pinned and checked.

    .venv/bin/python tools/vendor_js.py           # fetch, verify, extract, write vendor.json
    .venv/bin/python tools/vendor_js.py --check   # no network: the vendored files match vendor.json

Each package is fetched as its registry tarball (https://registry.npmjs.org/<name>/-/<name>-<v>.tgz)
and refused unless its SHA-512 equals the `dist.integrity` pinned below (the value the registry
publishes for that version). One ES-module file and the package's LICENSE are extracted into
server/static/lapangan/vendor/<name>/. Packages that ship no ES module (json-logic-js is UMD) are
wrapped: the original source runs unchanged inside a module that gives it a CommonJS `module`
object and exports what it put there. vendor.json records, per package, the version, the tarball
and its integrity, the file as vendored with its SHA-256, the licence and whether it was wrapped.

Nothing here is needed to run Tapak: the vendored files are committed, and `make run` serves them.
Only this script (`make vendor-js`) talks to the registry, and it needs Python only, not Node.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "server" / "static" / "lapangan" / "vendor"
MANIFEST = VENDOR / "vendor.json"
REGISTRY = "https://registry.npmjs.org"

# name -> pinned version, integrity (the registry's dist.integrity), file in the tarball, licence,
# and how to make it an ES module ("esm": as is; "umd": wrapped).
PACKAGES = {
    "idb": {
        "version": "8.0.4",
        "integrity": "sha512-jd0ITCrN+Zah4J7R/Z2jnR3W7A4BXDAjmo62MwWuSjxCiueUAf7X5"
        "rbodEdidWzeknwXHmLpdZkoiiCppNi30Q==",
        "source": "package/build/index.js",
        "license_file": "package/LICENSE",
        "license": "ISC",
        "kind": "esm",
        "file": "index.js",
        "homepage": "https://github.com/jakearchibald/idb",
    },
    "json-logic-js": {
        "version": "2.0.5",
        "integrity": "sha512-rTT2+lqcuUmj4DgWfmzupZqQDA64AdmYqizzMPWj3DxGdfFNsxPpcNVSaTj4l8W2tG/"
        "+hg7/mQhxjU3aPacO6g==",
        "source": "package/logic.js",
        "license_file": "package/LICENSE",
        "license": "MIT",
        "kind": "umd",
        "file": "json-logic.js",
        "homepage": "https://github.com/jwadhams/json-logic-js",
    },
}

UMD_HEAD = """\
// ES-module wrapper written by tools/vendor_js.py around {name} {version} ({source}),
// which ships only a UMD build. The original text follows unchanged; it sees a CommonJS
// `module` object, fills module.exports, and this module exports that object as `jsonLogic`.
const module = {{ exports: {{}} }};
const exports = module.exports;
"""
UMD_TAIL = """
const jsonLogic = module.exports;
export {{ jsonLogic }};
export default jsonLogic;
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_integrity(data: bytes, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise SystemExit(f"unsupported integrity algorithm {algo!r}")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise SystemExit(f"integrity mismatch: expected {integrity}, got sha512-{got}")


def fetch(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "tapak-vendor-js"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def registry_integrity(name: str, version: str) -> str:
    meta = json.loads(fetch(f"{REGISTRY}/{name}/{version}"))
    return meta["dist"]["integrity"]


def vendor(name: str, spec: dict) -> dict:
    version = spec["version"]
    tarball = f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    published = registry_integrity(name, version)
    if published != spec["integrity"]:
        raise SystemExit(
            f"{name}@{version}: the registry publishes {published}, pinned {spec['integrity']}"
        )
    data = fetch(tarball)
    check_integrity(data, spec["integrity"])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        source = tar.extractfile(spec["source"]).read()
        licence = tar.extractfile(spec["license_file"]).read()
    if spec["kind"] == "umd":
        text = (
            UMD_HEAD.format(name=name, version=version, source=spec["source"])
            + source.decode("utf-8")
            + UMD_TAIL.format()
        )
        out = text.encode("utf-8")
    else:
        out = source
    folder = VENDOR / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / spec["file"]).write_bytes(out)
    (folder / "LICENSE").write_bytes(licence)
    entry = {
        "name": name,
        "version": version,
        "homepage": spec["homepage"],
        "tarball": tarball,
        "integrity": spec["integrity"],
        "source": spec["source"],
        "file": f"{name}/{spec['file']}",
        "sha256": sha256(out),
        "source_sha256": sha256(source),
        "license": spec["license"],
        "license_file": f"{name}/LICENSE",
        "license_sha256": sha256(licence),
        "wrapped": spec["kind"] == "umd",
    }
    if entry["wrapped"]:
        entry["note"] = (
            "UMD/CommonJS only upstream: wrapped in an ES module that exports `jsonLogic` "
            "(named and default); the original text is unchanged inside the wrapper"
        )
    return entry


def write_all() -> None:
    entries = [vendor(name, spec) for name, spec in PACKAGES.items()]
    manifest = {
        "generated_by": "tools/vendor_js.py",
        "registry": REGISTRY,
        "packages": entries,
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for e in entries:
        print(f"vendored {e['name']}@{e['version']} -> {e['file']} sha256 {e['sha256']}")


def check() -> list[str]:
    """Problems with the vendored files, without network: an empty list means all is well."""
    if not MANIFEST.exists():
        return [f"{MANIFEST.relative_to(ROOT)} is missing"]
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    problems = []
    names = {e["name"] for e in manifest["packages"]}
    if names != set(PACKAGES):
        problems.append(f"vendor.json lists {sorted(names)}, the script pins {sorted(PACKAGES)}")
    for e in manifest["packages"]:
        spec = PACKAGES.get(e["name"])
        if spec and (e["version"], e["integrity"]) != (spec["version"], spec["integrity"]):
            problems.append(f"{e['name']}: vendor.json has {e['version']}, the script pins "
                            f"{spec['version']}; run tools/vendor_js.py")
        for key, rel in (("sha256", e["file"]), ("license_sha256", e["license_file"])):
            path = VENDOR / rel
            if not path.exists():
                problems.append(f"{rel} is missing")
            elif sha256(path.read_bytes()) != e[key]:
                problems.append(f"{rel}: sha256 differs from vendor.json")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify hashes, no network")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print("vendored JavaScript matches vendor.json")
        return 1 if problems else 0
    write_all()
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
