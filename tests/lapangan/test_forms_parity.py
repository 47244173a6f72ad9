"""The field app's form engine (server/static/lapangan/forms.js, in Chromium) against the
server's (forms/), case for case:

- the golden JsonLogic cases (tests/forms/golden/cases.json, from v1's own rules) and the
  classic json-logic suite (tests/data/jsonlogic/suites/compatible.json), each with the result
  the Python engine computes;
- validation: valid visits and broken ones (forms.example_visit and mutations) give the same
  errors, in the same order, with the same path, code and Indonesian message, and the same
  cleaned answers;
- prefill: forms.js prefill equals forms/prefill.py for every family of a bootstrapped demo.

The page is a static server over server/static/lapangan (forms.js imports its vendored
json-logic-js and messages.js by relative paths, so it needs no import map). Without Chromium
or Playwright the tests skip; with CI=true they fail (tests/pages/conftest.py's rule).
"""

from __future__ import annotations

import copy
import functools
import http.server
import json
import math
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

import forms
from forms.jsonlogic import JsonLogicError, apply
from tests.forms.conftest import VISIT_START, make_family
from tests.forms.golden import build
from tests.forms.test_jsonlogic_suite import SUITES, same
from tests.pages.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_missing, skip_or_fail

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "server" / "static" / "lapangan"
V1_PATH = build.FORM


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - keep pytest output clean
        pass


@pytest.fixture(scope="module")
def static_url():
    handler = functools.partial(_Quiet, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(static_url):
    skip_or_fail("browser test", chromium_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(static_url + "/")
        page.evaluate("async () => { window.F = await import('/forms.js'); }")
        yield page
        assert errors == []
        browser.close()


def _v1() -> dict:
    return json.loads(V1_PATH.read_text(encoding="utf-8"))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return same(a, b)


def _run_rules(page, cases: list[dict]) -> list[dict]:
    return page.evaluate(
        """(cases) => cases.map((c) => {
            try { return {value: F.applyRule(c.rule, c.data)}; }
            catch (e) { return {error: String(e)}; }
        })""",
        [{"rule": c["rule"], "data": c.get("data")} for c in cases],
    )


def _python(rule, data) -> dict:
    try:
        return {"value": apply(rule, data)}
    except JsonLogicError as exc:
        return {"error": str(exc)}


def _disagreements(cases: list[dict], got: list[dict]) -> list:
    bad = []
    for case, js in zip(cases, got, strict=True):
        py = _python(case["rule"], case.get("data"))
        if ("error" in py) != ("error" in js) or (
            "value" in py and not _same(py["value"], js["value"])
        ):
            bad.append((case.get("id") or case.get("description"), case["rule"], py, js))
    return bad


def test_golden_cases_agree_case_for_case(page):
    cases = json.loads(build.CASES.read_text(encoding="utf-8"))["cases"]
    assert len(cases) == 432
    got = _run_rules(page, cases)
    assert _disagreements(cases, got) == []
    # and both equal what the file records
    for case, js in zip(cases, got, strict=True):
        if case.get("error"):
            assert "error" in js, case["id"]
        else:
            assert _same(js["value"], case["result"]), case["id"]


def test_compatible_suite_agrees_case_for_case(page):
    cases = [c for c in json.loads((SUITES / "compatible.json").read_text()) if isinstance(c, dict)]
    assert len(cases) == 278
    for case in cases:  # the Python engine's result is the suite's
        assert _same(apply(case["rule"], case.get("data")), case["result"]), case
    got = _run_rules(page, cases)
    assert _disagreements(cases, got) == []


# ---------------------------------------------------------------------------
# Validation parity
# ---------------------------------------------------------------------------


def _example(size: int = 4, **kw) -> dict:
    v1 = forms.get_form("verifikasi_keluarga", 1)
    return forms.example_visit(
        v1, make_family(size), uuid="00000000-0000-4000-8000-000000000001",
        started_at=kw.get("started_at", VISIT_START),
    )


def _mutations() -> list[tuple[str, dict]]:
    """(name, visit): valid visits and visits broken in every way the engine reports."""
    out: list[tuple[str, dict]] = []

    def add(name, change, size=4):
        visit = _example(size)
        change(visit)
        out.append((name, visit))

    a = lambda v: v["answers"]  # noqa: E731
    m = lambda v, i=0: v["answers"]["anggota"][i]  # noqa: E731

    for size in (1, 4, 9):
        add(f"valid family of {size}", lambda v: None, size)
    out.append(("valid, visit the day a child turns 10",
                _example(7, started_at="2026-01-06T08:00:00+07:00")))
    add("not found: most answers not relevant", lambda v: a(v).update(hasil_kunjungan=3))
    add("no consent", lambda v: a(v).update(persetujuan=False))
    add("consent as text", lambda v: a(v).update(persetujuan="true"))
    add("hasil_kunjungan not a code", lambda v: a(v).update(hasil_kunjungan=11))
    add("hasil_kunjungan as text", lambda v: a(v).update(hasil_kunjungan="1"))
    add("hasil_kunjungan blank", lambda v: a(v).update(hasil_kunjungan=""))
    add("GPS too coarse", lambda v: a(v)["lokasi"].update(accuracy_m=150))
    add("GPS accuracy text", lambda v: a(v)["lokasi"].update(accuracy_m="5"))
    add("GPS negative accuracy", lambda v: a(v)["lokasi"].update(accuracy_m=-1))
    add("GPS latitude out of range", lambda v: a(v)["lokasi"].update(lat=91))
    add("GPS extra key", lambda v: a(v)["lokasi"].update(speed=3))
    add("GPS altitude text", lambda v: a(v)["lokasi"].update(altitude_m="x"))
    add("GPS missing", lambda v: a(v).pop("lokasi"))
    add("GPS not an object", lambda v: a(v).update(lokasi=[1, 2]))
    add("NIK of 15 digits", lambda v: m(v).update(nik="317301010190000"))
    add("name blank", lambda v: m(v).update(nama=""))
    add("name too short", lambda v: m(v).update(nama="A"))
    add("name too long", lambda v: m(v).update(nama="A" * 101))
    add("name with emoji counts code points", lambda v: m(v).update(nama="\U0001f600" * 100))
    add("sex not a code", lambda v: m(v).update(jenis_kelamin="X"))
    add("sex as a number", lambda v: m(v).update(jenis_kelamin=1))
    add("born after the visit", lambda v: m(v).update(tanggal_lahir="2026-02-01"))
    add("no such date", lambda v: m(v).update(tanggal_lahir="2026-02-30"))
    add("born before 1900", lambda v: m(v).update(tanggal_lahir="1899-12-31"))
    add("date in another format", lambda v: m(v).update(tanggal_lahir="01-01-1990"))
    add("two heads of family", lambda v: m(v, 1).update(hubungan=1))
    add("a head who died does not count", lambda v: (m(v, 1).update(hubungan=1),
                                                     m(v, 1).update(status_keberadaan=2)))
    add("pregnancy asked of a man: dropped", lambda v: m(v).update(hamil=True))
    add("pregnancy missing for a woman of 30", lambda v: m(v, 1).pop("hamil", None))
    add("member died: school and work dropped", lambda v: m(v, 1).update(status_keberadaan=2))
    add("new member", lambda v: a(v)["anggota"].append(dict(
        m(v, 2), nik="3173010101990099", nama="Anak Baru", status_keberadaan=5)))
    add("member status missing", lambda v: m(v).pop("status_keberadaan"))
    add("helper name as an answer", lambda v: m(v).update(umur=30))
    add("unknown key in a member", lambda v: m(v).update(zzz=1))
    add("member not an object", lambda v: a(v)["anggota"].append("x"))
    add("no members", lambda v: a(v).update(anggota=[]))
    add("31 members", lambda v: a(v).update(anggota=[dict(m(v), nik=f"31730101019{i:05d}")
                                                     for i in range(31)]))
    add("members not a list", lambda v: a(v).update(anggota={"x": 1}))
    add("housing missing", lambda v: a(v).pop("rumah"))
    add("housing not an object", lambda v: a(v).update(rumah="x"))
    add("floor area zero", lambda v: a(v)["rumah"].update(luas_lantai_m2=0))
    add("floor area too large", lambda v: a(v)["rumah"].update(luas_lantai_m2=10000.5))
    add("floor area text", lambda v: a(v)["rumah"].update(luas_lantai_m2="36"))
    add("floor area decimal", lambda v: a(v)["rumah"].update(luas_lantai_m2=36.75))
    add("no PLN electricity: power dropped", lambda v: a(v)["rumah"].update(penerangan=4))
    add("power not a code", lambda v: a(v)["rumah"].update(daya_va=1234))
    add("unknown key in housing", lambda v: a(v)["rumah"].update(kamar=3))
    add("bottled water contradicts", lambda v: (a(v)["rumah"].update(air_minum=1),
                                               a(v)["eksklusi"].update(air_kemasan_bermerek=False)))
    add("bottled water agrees", lambda v: (a(v)["rumah"].update(air_minum=1),
                                          a(v)["eksklusi"].update(air_kemasan_bermerek=True)))
    add("asset as number", lambda v: a(v)["aset"].update(mobil=0))
    add("note too long", lambda v: a(v).update(catatan="x" * 1001))
    add("note a number", lambda v: a(v).update(catatan=5))
    add("KK pattern", lambda v: a(v).update(no_kk="31730112031500O1"))
    add("RT pattern", lambda v: a(v).update(rt="1"))
    add("unknown top-level answer", lambda v: a(v).update(zzz=None, yyy=[1]))
    add("front photo missing", lambda v: v.update(photos=[p for p in v["photos"]
                                                         if p["field"] != "foto_depan"]))
    add("photo answer with no entry", lambda v: (a(v).update(foto_kk="kk.jpg"),
                                                v.update(photos=[p for p in v["photos"]
                                                                 if p["field"] != "foto_kk"])))
    add("photo answer a number", lambda v: a(v).update(foto_depan=1))
    add("photo twice", lambda v: v["photos"].append(dict(v["photos"][0])))
    add("photo bad sha", lambda v: v["photos"][0].update(sha256="ABC"))
    add("photo unknown field", lambda v: v["photos"].append(
        {"field": "anggota[0].foto", "sha256": "0" * 64}))
    add("photo without field", lambda v: v["photos"].append({"sha256": "0" * 64}))
    add("photo filename number", lambda v: v["photos"][0].update(filename=5))
    add("photo entry not an object", lambda v: v["photos"].append("x"))
    add("photos not a list", lambda v: v.update(photos={}))
    add("photos null", lambda v: v.update(photos=None))
    add("started_at missing", lambda v: v.pop("started_at"))
    add("started_at without offset", lambda v: v.update(started_at="2026-01-05T09:12:00"))
    add("started_at hour 24", lambda v: v.update(started_at="2026-01-05T24:00:00+07:00"))
    add("started_at offset 24h", lambda v: v.update(started_at="2026-01-05T09:00:00+24:00"))
    add("started_at offset +07:99", lambda v: v.update(started_at="2026-01-05T09:00+07:99"))
    add("started_at fractional", lambda v: v.update(started_at="2026-01-05T09:00:00.123456Z"))
    add("other form", lambda v: v.update(form_id="lain"))
    add("other version", lambda v: v.update(form_version=2))
    add("version as text", lambda v: v.update(form_version="1"))
    add("answers missing", lambda v: v.pop("answers"))
    add("answers a list", lambda v: v.update(answers=[]))
    out.append(("visit a list", []))
    out.append(("visit a string", "x"))
    add("everything wrong at once", lambda v: (
        v.update(form_version=9, started_at="kemarin"),
        a(v).update(hasil_kunjungan=2, zzz=1),
        a(v)["lokasi"].update(accuracy_m=500),
        m(v).update(nik="1", tanggal_lahir="2030-01-01", jenis_kelamin="P"),
        a(v)["rumah"].update(luas_lantai_m2=-3),
    ))
    return out


MUTATIONS = _mutations()


def test_validation_agrees_error_for_error(page):
    v1_def = _v1()
    v1 = forms.get_form("verifikasi_keluarga", 1)
    visits = [copy.deepcopy(v) for _, v in MUTATIONS]
    got = page.evaluate(
        "([d, visits]) => visits.map((v) => { const r = F.check(d, v); "
        "return {errors: r.errors, answers: r.answers}; })",
        [v1_def, visits],
    )
    valid = invalid = 0
    for (name, visit), js in zip(MUTATIONS, got, strict=True):
        answers, errors = forms.validate_visit(v1, visit)
        assert js["errors"] == errors, name
        assert _same(js["answers"], answers), name
        valid += not errors
        invalid += bool(errors)
    assert valid >= 10 and invalid >= 60, (valid, invalid)
    codes = {e["code"] for _, v in MUTATIONS for e in forms.validate_visit(v1, v).errors}
    assert codes >= {"required", "type", "choice", "duplicate", "min", "max", "min_length",
                     "max_length", "max_count", "pattern", "constraint", "unknown_field",
                     "photo_missing", "form_mismatch"}  # min_count: the small form below


def test_relevance_follows_the_answers(page):
    visit = _example(4)
    visit["answers"]["anggota"][1]["status_keberadaan"] = 2
    got = page.evaluate(
        """([d, v]) => [
            F.isRelevant(d, v, 'answers.persetujuan'),
            F.isRelevant(d, v, 'answers.anggota[0].hamil'),
            F.isRelevant(d, v, 'answers.anggota[1].sekolah'),
            F.isRelevant(d, v, 'answers.rumah.daya_va'),
            F.validate(d, v).length,
        ]""",
        [_v1(), visit],
    )
    # anggota[0] is a man, anggota[1] a woman who died: neither is asked about pregnancy/school
    assert got == [True, False, False, True, 0]


def test_rule_errors_and_custom_forms_agree(page):
    """A small form of its own: select_multiple, integer, datetime, a nested group, a rule
    that throws in both engines (``*`` of nothing), a group constraint and an optional photo."""
    definition = {
        "form_id": "uji", "version": 1, "title": {"id": "Uji"},
        "choices": {"warna": [{"value": 1, "label": "Merah"}, {"value": 2, "label": "Hijau"},
                              {"value": 3, "label": "Biru"}]},
        "fields": [
            {"name": "warna", "type": "select_multiple", "label": "Warna", "choices": "warna",
             "min_count": 2, "max_count": 2},
            {"name": "jumlah", "type": "integer", "label": "Jumlah", "min": 1, "max": 5},
            {"name": "waktu", "type": "datetime", "label": "Waktu"},
            {"name": "kosong", "type": "text", "label": "Kosong"},
            {"name": "rusak", "type": "text", "label": "Rusak",
             "relevant": {"*": []}},
            {"name": "grup", "type": "group", "label": "Grup",
             "constraint": {"<": [{"var": "value.dalam.a"}, 3]},
             "fields": [{"name": "dalam", "type": "group", "label": "Dalam",
                         "fields": [{"name": "a", "type": "integer", "label": "A"}]}]},
            {"name": "foto", "type": "photo", "label": "Foto"},
            {"name": "info", "type": "note", "label": "Info"},
        ],
    }
    answers_list = [
        {"warna": [1, 3], "jumlah": 3, "waktu": "2026-01-05T09:12:00Z",
         "grup": {"dalam": {"a": 2}}},
        {"warna": [1, 1], "jumlah": 3.0},
        {"warna": [1], "jumlah": 0, "waktu": "2026-13-05T09:12:00Z"},
        {"warna": [1, 2, 3], "jumlah": 6, "rusak": "x", "info": "x"},
        {"warna": [4, "1"], "jumlah": 2.5, "grup": {"dalam": {"a": 7}}},
        {"warna": "1", "jumlah": True, "grup": {"dalam": "x"}, "foto": "a.jpg"},
        {"warna": [], "grup": {}, "foto": ""},
    ]
    visits = [{"form_id": "uji", "form_version": 1, "started_at": VISIT_START, "answers": a}
              for a in answers_list]
    got = page.evaluate("([d, vs]) => vs.map((v) => F.check(d, v))", [definition, visits])
    for visit, js in zip(visits, got, strict=True):
        answers, errors = forms.validate_visit(definition, visit)
        assert js["errors"] == errors, visit
        assert _same(js["answers"], answers), visit
    assert any(e["code"] == "rule_error" for e in got[0]["errors"])
    codes = {e["code"] for r in got for e in r["errors"]}
    assert {"min_count", "max_count", "duplicate", "choice", "constraint", "photo_missing",
            "unknown_field", "min", "max", "type"} <= codes


def test_iterators_over_non_arrays_agree(page):
    """json-logic-js 2.0.5 takes anything but a non-empty array in all/some/none as an empty
    set; forms/jsonlogic.py does the same."""
    cases = [{"rule": {op: [src, {"==": [{"var": ""}, "a"]}]}, "data": {}}
             for op in ("all", "some", "none") for src in (None, "aa", "abc")]
    assert _disagreements(cases, _run_rules(page, cases)) == []


# ---------------------------------------------------------------------------
# Prefill parity
# ---------------------------------------------------------------------------


def _odd_records() -> list[dict]:
    """Registry records with values the form does not take, to exercise the skipping."""
    records = []
    r = make_family(5)
    r["anggota"][0]["nik"] = "317301010190000"  # 15 digits
    r["anggota"][1]["jenis_kelamin"] = "W"
    r["anggota"][2]["tanggal_lahir"] = "2015-02-30"
    r["rumah"]["daya_va"] = 1234
    r["rumah"]["luas_lantai_m2"] = "36"
    r["rt"] = ""
    records.append(r)
    r = make_family(2)
    r["anggota"].append("bukan anggota")
    r["aset"] = ["x"]
    r.pop("rumah")
    records.append(r)
    r = make_family(1)
    r["anggota"] = {"0": {"nama": "x"}}
    records.append(r)
    records.append({})
    return records


def test_prefill_agrees_on_every_demo_family(page, app, db, runner):
    from sync.models.registry import VerifiedRecord

    result = runner.invoke(args=["bootstrap", "--households", "60",
                                 "--visits-per-kecamatan", "0"])
    assert result.exit_code == 0, result.output
    records = [doc for doc in db.scalars(select(VerifiedRecord.doc)
                                         .order_by(VerifiedRecord.household_id))]
    assert len(records) >= 50
    records += [make_family(n, number=n) for n in range(1, 10)] + _odd_records()
    v1 = forms.get_form("verifikasi_keluarga", 1)
    got = page.evaluate("([d, rs]) => rs.map((r) => F.prefill(d, r))", [_v1(), records])
    mismatched = [i for i, (record, js) in enumerate(zip(records, got, strict=True))
                  if not _same(js, forms.prefill(v1, record))]
    assert mismatched == []
    assert sum(bool(p.get("anggota")) for p in got) >= 50
