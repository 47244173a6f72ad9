"""Golden JsonLogic cases from the household form's own expressions (cases.json).

Every ``relevant`` and ``constraint`` rule of forms/verifikasi_keluarga/v1.json is evaluated on
a fixed set of rule contexts (answers, ``_visit``, ``_item``, ``_parent``, ``value``, shaped as
forms/engine.py builds them, with wrong types and blanks mixed in), and each result is recorded
as forms/jsonlogic.py computes it. The same file runs through the Python engine
(tests/forms/golden/test_cases.py) and through json-logic-js in Chromium
(tests/lapangan/test_forms_parity.py): the two must agree case for case.

    .venv/bin/python -m tests.forms.golden.build   # rewrite cases.json (a test checks it)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from forms.jsonlogic import JsonLogicError, apply

ROOT = Path(__file__).resolve().parents[3]
FORM = ROOT / "forms" / "verifikasi_keluarga" / "v1.json"
CASES = Path(__file__).with_name("cases.json")
SEED = 20261205
CONTEXTS = 48
_ABSENT = object()


def rules_of(definition: dict) -> list[dict]:
    """Each distinct rule once, with every place of the definition that uses it."""
    found: dict[str, dict] = {}

    def walk(fields: list, path: str) -> None:
        for i, f in enumerate(fields):
            for key in ("relevant", "constraint"):
                if key in f:
                    canon = json.dumps(f[key], sort_keys=True, separators=(",", ":"))
                    entry = found.setdefault(canon, {"rule": f[key], "sources": []})
                    entry["sources"].append(f"{path}[{i}].{key} ({f['name']})")
            if "fields" in f:
                walk(f["fields"], f"{path}[{i}].fields")

    walk(definition["fields"], "fields")
    return list(found.values())


def _pick(rng: random.Random, pool: list) -> Any:
    return pool[rng.randrange(len(pool))]


def _put(obj: dict, key: str, value: Any) -> None:
    if value is not _ABSENT:
        obj[key] = value


def _member(rng: random.Random) -> dict:
    m: dict = {}
    _put(m, "hubungan", _pick(rng, [1, 1, 2, 3, "1", None, _ABSENT]))
    _put(m, "status_keberadaan", _pick(rng, [1, 2, 3, 4, 5, 6, 5, "1", None, _ABSENT]))
    _put(m, "nama", _pick(rng, ["Budi", "", None]))
    return m


def _value(rng: random.Random) -> Any:
    kind = rng.randrange(6)
    if kind == 0:  # lokasi
        point: dict = {"lat": -6.14, "lon": 106.73}
        _put(point, "accuracy_m", _pick(rng, [5, 12.5, 100, 100.0, 100.5, 250, 0, None, "50",
                                              _ABSENT]))
        return point
    if kind == 1:  # anggota
        return [_member(rng) for _ in range(rng.randrange(5))]
    if kind == 2:  # tanggal_lahir
        return _pick(rng, ["1990-01-01", "2026-01-05", "2026-01-06", "2025-12-31", "", None])
    if kind == 3:  # air_kemasan_bermerek and other booleans
        return _pick(rng, [True, False, None, 0, 1, "", "false"])
    if kind == 4:
        return _pick(rng, [0, 1, 99, -1, 1.5, "abc", [], {}])
    return _ABSENT


def context(rng: random.Random) -> dict:
    """One rule context: the data object forms/engine.py hands to a rule."""
    data: dict = {}
    _put(data, "hasil_kunjungan", _pick(rng, [1, 2, 3, 4, 9, 10, 1.0, "1", "9", None, _ABSENT]))
    _put(data, "persetujuan", _pick(rng, [True, True, False, None, "true", 1, 0, _ABSENT]))
    if rng.random() < 0.8:
        rumah: dict = {}
        _put(rumah, "penerangan", _pick(rng, [1, 1, 2, 4, "1", None, _ABSENT]))
        _put(rumah, "air_minum", _pick(rng, [1, 1, 3, 11, "1", None, _ABSENT]))
        data["rumah"] = rumah
    data["_visit"] = {"date": _pick(rng, ["2026-01-05", "2026-01-05", "2025-12-31", None])}
    if rng.random() < 0.75:
        item: dict = {}
        _put(item, "status_keberadaan", _pick(rng, [1, 1, 2, 3, 4, 5, 5, 6, "1", None, _ABSENT]))
        _put(item, "jenis_kelamin", _pick(rng, ["P", "P", "L", "p", None, _ABSENT]))
        _put(item, "umur", _pick(rng, [None, 9, 10, 30, 54, 55, 75, "30", 10.5, _ABSENT]))
        data["_item"] = item
    else:
        data["_item"] = None
    data["_parent"] = None
    _put(data, "value", _value(rng))
    return data


def build() -> dict:
    definition = json.loads(FORM.read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    contexts = [context(rng) for _ in range(CONTEXTS)]
    cases = []
    for r, entry in enumerate(rules_of(definition)):
        for c, data in enumerate(contexts):
            case = {"id": f"v1-r{r:02d}-c{c:02d}", "sources": entry["sources"],
                    "rule": entry["rule"], "data": data}
            try:
                case["result"] = apply(entry["rule"], data)
            except JsonLogicError:
                case["error"] = True
            cases.append(case)
    return {
        "about": "Golden JsonLogic cases: every relevant/constraint rule of "
        "forms/verifikasi_keluarga/v1.json on fixed rule contexts, results from "
        "forms/jsonlogic.py. "
        "Written by `python -m tests.forms.golden.build`; run by tests/forms/golden/test_cases.py "
        "(Python) and tests/lapangan/test_forms_parity.py (json-logic-js in Chromium).",
        "form": "verifikasi_keluarga v1",
        "seed": SEED,
        "cases": cases,
    }


def render() -> str:
    """cases.json: one case a line, so that a change shows as the cases it touches."""
    doc = build()
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in doc["cases"]]
    body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    return body + ',\n "cases": [\n' + ",\n".join(lines) + "\n ]\n}\n"


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    CASES.write_text(render(), encoding="utf-8")
    print(f"wrote {CASES}")
