"""The XForm of v1: well formed, the expected binds, choices, repeat, photos, prefill."""

from __future__ import annotations

import hashlib

import pytest
from defusedxml.ElementTree import fromstring

from forms.xform import BOOLEAN_LIST, XFormError, build_xform, prefill_columns, xlsform_of

NS = {
    "h": "http://www.w3.org/1999/xhtml",
    "x": "http://www.w3.org/2002/xforms",
    "jr": "http://openrosa.org/javarosa",
    "orx": "http://openrosa.org/xforms",
}
JR = "{http://openrosa.org/javarosa}"
FOUND = "(/data/hasil_kunjungan = 1 or /data/hasil_kunjungan = 2 or /data/hasil_kunjungan = 9)"
INTERVIEW = f"({FOUND} and /data/persetujuan = 'yes')"


@pytest.fixture(scope="module")
def doc(v1_xform):
    return fromstring(v1_xform)


@pytest.fixture(scope="module")
def binds(doc):
    return {b.get("nodeset"): b for b in doc.iter("{http://www.w3.org/2002/xforms}bind")}


def test_well_formed_and_deterministic(v1, v1_xform, doc):
    assert v1_xform.startswith(b"<?xml")
    assert build_xform(v1) == v1_xform  # the stored bytes and their md5 never change
    assert len(hashlib.md5(v1_xform).hexdigest()) == 32
    data = doc.find("h:head/x:model/x:instance/x:data", NS)
    assert data.get("id") == "verifikasi_keluarga" and data.get("version") == "1"
    assert doc.find("h:head/h:title", NS).text == "Verifikasi Keluarga DTSEN"


def test_every_question_has_a_node(v1, doc):
    data = doc.find("h:head/x:model/x:instance/x:data", NS)

    def walk(fields, el):
        for f in fields:
            if f["type"] == "note":
                continue
            child = el.find(f"x:{f['name']}", NS)
            assert child is not None, f["name"]
            if f["type"] in ("group", "repeat"):
                walk(f["fields"], child)

    walk(v1["fields"], data)


def test_binds_types_required_relevance(binds):
    assert binds["/data/hasil_kunjungan"].get("required") == "true()"
    assert binds["/data/persetujuan"].get("relevant") == FOUND
    assert binds["/data/nama_responden"].get("relevant") == INTERVIEW
    assert binds["/data/rumah"].get("relevant") == INTERVIEW
    assert binds["/data/anggota"].get("relevant") == INTERVIEW
    assert binds["/data/rumah/daya_va"].get("relevant") == "/data/rumah/penerangan = 1"
    assert binds["/data/anggota/hamil"].get("relevant") == (
        "((../status_keberadaan = 1 or ../status_keberadaan = 5) and ../jenis_kelamin = 'P'"
        " and (10 <= coalesce(../umur, 0) and coalesce(../umur, 0) <= 54))"
    )
    assert binds["/data/lokasi"].get("type") == "geopoint"
    assert binds["/data/rumah/luas_lantai_m2"].get("type") == "decimal"
    assert binds["/data/anggota/tanggal_lahir"].get("type") == "date"
    assert binds["/data/_mulai"].get(f"{JR}preloadParams") == "start"
    assert binds["/data/_selesai"].get(f"{JR}preloadParams") == "end"
    assert "today()" in binds["/data/anggota/umur"].get("calculate")
    assert binds["/data/meta/instanceName"].get("calculate") == (
        "concat( /data/_keluarga , ' ', "
        "instance('households')/root/item[name =  /data/_keluarga ]/label)"
    )


def test_constraints_and_messages(binds, doc):
    assert binds["/data/lokasi"].get("constraint") == "coalesce(selected-at(., 3), 0) <= 100"
    assert binds["/data/no_kk"].get("constraint") == "regex(., '^(?:[0-9]{16})$')"
    assert binds["/data/nama_responden"].get("constraint") == (
        "(string-length(.) >= 2) and (string-length(.) <= 100)"
    )
    assert binds["/data/rumah/luas_lantai_m2"].get("constraint") == "(. >= 1) and (. <= 10000)"
    assert binds["/data/eksklusi/air_kemasan_bermerek"].get("constraint") == (
        "(. = 'yes' or not(/data/rumah/air_minum = 1))"
    )
    assert "decimal-date-time(today())" in binds["/data/anggota/tanggal_lahir"].get("constraint")
    # the repeat's "one head" constraint sits on the entry questions it reads
    head = (
        "count(/data/anggota[(hubungan = 1 and "
        "(status_keberadaan = 1 or status_keberadaan = 5))]) <= 1"
    )
    assert binds["/data/anggota/hubungan"].get("constraint") == head
    assert binds["/data/anggota/status_keberadaan"].get("constraint") == head
    # messages are translations (itext), Indonesian first
    texts = {
        t.get("id"): t.find("x:value", NS).text
        for tr in doc.iter("{http://www.w3.org/2002/xforms}translation")
        if tr.get("lang") == "Bahasa Indonesia (id)"
        for t in tr.findall("x:text", NS)
    }
    assert texts["/data/lokasi:jr:constraintMsg"].startswith("Akurasi GPS harus 100 m")
    assert texts["/data/anggota/hubungan:jr:constraintMsg"].startswith(
        "Hanya boleh ada satu kepala"
    )


def test_booleans_are_yes_no_selects(binds, doc):
    assert binds["/data/persetujuan"].get("type") == "string"
    sel = [
        s
        for s in doc.iter("{http://www.w3.org/2002/xforms}select1")
        if s.get("ref") == "/data/persetujuan"
    ][0]
    assert sel.find("x:itemset", NS).get("nodeset") == f"instance('{BOOLEAN_LIST}')/root/item"
    inst = [
        i
        for i in doc.iter("{http://www.w3.org/2002/xforms}instance")
        if i.get("id") == BOOLEAN_LIST
    ][0]
    assert [n.text for n in inst.iter("{http://www.w3.org/2002/xforms}name")] == ["yes", "no"]


def test_choice_lists(v1, doc):
    instances = {i.get("id"): i for i in doc.iter("{http://www.w3.org/2002/xforms}instance")}
    for name, options in v1["choices"].items():
        codes = [n.text for n in instances[name].iter("{http://www.w3.org/2002/xforms}name")]
        assert codes == [str(o["value"]) for o in options], name


def test_photos_have_max_pixels(binds):
    for ref in ("/data/foto_depan", "/data/foto_dalam", "/data/foto_kk"):
        assert binds[ref].get("type") == "binary"
        assert binds[ref].get("{http://openrosa.org/xforms}max-pixels") == "1600"


def test_prefill_from_csv_with_setvalue(v1, doc, binds):
    instances = {
        i.get("id"): i.get("src") for i in doc.iter("{http://www.w3.org/2002/xforms}instance")
    }
    assert instances["households"] == "jr://file-csv/households.csv"
    assert instances["members"] == "jr://file-csv/members.csv"
    setvalues = list(doc.iter("{http://www.w3.org/2002/xforms}setvalue"))
    changed = {
        s.get("ref"): s.get("value") for s in setvalues if s.get("event") == "xforms-value-changed"
    }
    assert changed["/data/no_kk"] == (
        "instance('households')/root/item[name =  /data/_keluarga ]/no_kk"
    )
    assert changed["/data/rumah/lantai"].endswith("/rumah__lantai")
    assert changed["/data/_base_version"].endswith("/base_version")
    # no prefilled question is a calculate: all stay editable
    for ref in changed:
        assert binds[ref].get("calculate") is None, ref
    new_entry = {
        s.get("ref"): s.get("value") for s in setvalues if s.get("event") == "odk-new-repeat"
    }
    assert new_entry["/data/anggota/nik"] == (
        "instance('members')/root/item[household =  /data/_keluarga ]"
        "[position() = position(current()/..)]/nik"
    )
    assert new_entry["/data/anggota/status_keberadaan"].startswith("if(position(current()/..) >")
    # the members repeat is counted: the family's rows plus the new members asked for
    repeat = [r for r in doc.iter("{http://www.w3.org/2002/xforms}repeat")][0]
    assert repeat.get("nodeset") == "/data/anggota"
    count = binds[repeat.get(f"{JR}count").strip()].get("calculate")
    assert "count(instance('members')/root/item[household =  /data/_keluarga ])" in count
    assert "coalesce( /data/_anggota_baru , 0)" in count
    hh, mem, repeat_path = prefill_columns(v1)
    assert repeat_path == ("anggota",)
    assert hh[:6] == ["name", "label", "base_version", "visited", "revisit", "revisit_note"]
    assert "rumah__njop_di_atas_1m" in hh and "nik" in mem and "hamil" in mem


def test_the_family_is_the_first_question(doc):
    body = doc.find("h:body", NS)
    first = body[0]
    assert first.get("ref") == "/data/_keluarga"
    assert first.find("x:itemset", NS).get("nodeset") == "instance('households')/root/item"


def test_untranslatable_rule_is_refused(v1):
    import copy

    bad = copy.deepcopy(v1)
    bad["fields"][-1]["relevant"] = {"<": [{"var": "nama_responden"}, "M"]}
    with pytest.raises(XFormError, match="catatan: cannot translate"):
        build_xform(bad)


def test_xlsform_rows_have_labels_in_both_languages(v1):
    book = xlsform_of(v1)
    row = next(r for r in book["survey"] if r.get("name") == "hasil_kunjungan")
    assert row["label::Bahasa Indonesia (id)"] and row["label::English (en)"]
    assert book["settings"][0]["version"] == "1"
