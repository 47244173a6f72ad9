"""One table of Indonesian messages (forms/messages.py): the server's validation uses it, and
the field app's messages.js is the same table."""

from __future__ import annotations

import re
from pathlib import Path

import forms
from forms import messages
from tests.forms.conftest import VISIT_START, make_family

FORMS_JS = Path(messages.JS_PATH).with_name("forms.js")


def test_messages_js_is_the_table():
    assert messages.JS_PATH.read_text(encoding="utf-8") == messages.render_js(), (
        "run .venv/bin/python -m forms.messages"
    )


def test_every_key_the_engines_use_is_in_the_table():
    engine = (Path(forms.__file__).with_name("engine.py")).read_text(encoding="utf-8")
    js = FORMS_JS.read_text(encoding="utf-8")
    used = set(re.findall(r'message\(\s*"([a-z_.]+)"', engine))
    used |= set(re.findall(r'message\(\s*"([a-z_.]+)"', js))
    used |= set(re.findall(r'\["[a-z_]+", "([a-z_.]+)", \{', js))  # check results in forms.js
    used |= set(re.findall(r'return "[a-z_]+", "([a-z_.]+)", ', engine))
    assert "required" in used and "type.geopoint" in used and "choice" in used
    assert used <= set(messages.MESSAGES), used - set(messages.MESSAGES)
    # every code.variant key names a code of docs/forms.md's table
    codes = {k.split(".")[0] for k in messages.MESSAGES}
    assert codes <= {"required", "type", "choice", "duplicate", "min", "max", "min_length",
                     "max_length", "min_count", "max_count", "pattern", "constraint",
                     "unknown_field", "photo_missing", "rule_error", "form_mismatch"}


def test_server_validation_speaks_indonesian():
    v1 = forms.get_form("verifikasi_keluarga", 1)
    visit = forms.example_visit(v1, make_family(3), started_at=VISIT_START)
    visit["answers"]["lokasi"]["accuracy_m"] = 150
    visit["answers"]["anggota"][0]["nik"] = "12"
    del visit["answers"]["rumah"]["lantai"]
    visit["form_version"] = 2
    errors = {e["path"]: e for e in forms.validate_visit(v1, visit).errors}
    assert errors["answers.rumah.lantai"]["message"] == "Jenis lantai terluas wajib diisi."
    assert errors["answers.anggota[0].nik"]["message"] == (
        "NIK tidak sesuai format yang diminta ([0-9]{16})."
    )
    assert errors["answers.lokasi"]["message"].endswith(
        "Akurasi GPS harus 100 m atau lebih baik; tunggu sinyal lalu ulangi.")
    assert errors["form_version"]["message"].startswith("Kunjungan ini diisi dengan versi 2;")


def test_message_fills_placeholders_and_keeps_other_braces():
    assert messages.message("type.geopoint", label="Lokasi").startswith(
        'Lokasi harus berupa titik GPS {"lat", "lon", "accuracy_m"}')
    assert messages.message("unknown_field", key="label") == (
        "'label' bukan pertanyaan formulir ini di sini.")
    assert [messages.show(v) for v in ("a\"b", 1.0, 1.5, True, None, [1], {})] == [
        '"a\\"b"', "1", "1.5", "true", "null", "[...]", "{...}"]
