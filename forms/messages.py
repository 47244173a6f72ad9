"""The one table of Indonesian validation messages, keyed by error code.

``MESSAGES`` below maps a key to a sentence. A key is the error code (``required``,
``pattern``...) or ``code.variant`` where one code has several sentences (``required.photo``,
``type.date``). forms/engine.py builds every visit-validation message from it, and the field
app shows the very same sentences: ``server/static/lapangan/messages.js`` is this table as an
ES module, written by ``python -m forms.messages`` (a test keeps the two identical). The table
is Python, not JSON, because every ``*.json`` under forms/ is taken for a form definition.

Placeholders are ``{name}``; other braces are literal text. Values the user gave are shown
with :func:`show`, which the app's forms.js mirrors, so both sides print them alike.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from forms.jsonlogic import js_to_string

JS_PATH = Path(__file__).resolve().parent.parent / "server" / "static" / "lapangan" / "messages.js"

# key -> sentence; a key is the error code, or code.variant where one code has several sentences.
MESSAGES: dict[str, str] = {
    "required": "{label} wajib diisi.",
    "required.repeat": "{label} perlu paling sedikit satu isian.",
    "required.photo": "{label} wajib diisi: foto untuk '{key}' belum ada.",
    "required.started_at": "started_at wajib diisi (tanggal kunjungan).",
    "required.answers": "answers harus berupa objek berisi jawaban pertanyaan formulir.",
    "required.photo_field": "Entri foto harus menyebut pertanyaan yang dijawabnya (field).",
    "type.text": "{label} harus berupa teks.",
    "type.integer": "{label} harus berupa bilangan bulat.",
    "type.decimal": "{label} harus berupa angka.",
    "type.boolean": "{label} harus dijawab ya atau tidak.",
    "type.date": "{label} harus berupa tanggal dengan format TTTT-BB-HH.",
    "type.datetime": (
        "{label} harus berupa tanggal dan jam dengan zona waktu, "
        "misalnya 2026-01-05T09:12:00+07:00."
    ),
    "type.select_multiple": "{label} harus berupa daftar kode.",
    "type.geopoint": (
        '{label} harus berupa titik GPS {"lat", "lon", "accuracy_m"} dalam derajat dan meter.'
    ),
    "type.geopoint_range": "{label} memiliki lintang atau bujur di luar jangkauan.",
    "type.geopoint_accuracy": "{label} memiliki akurasi yang bukan bilangan meter tidak negatif.",
    "type.geopoint_altitude": "{label} memiliki ketinggian yang bukan angka.",
    "type.group": "{label} harus berupa objek.",
    "type.repeat": "{label} harus berupa daftar isian.",
    "type.repeat_entry": "Setiap isian harus berupa objek.",
    "type.photo": "{label} berisi nama berkas foto, berupa teks.",
    "type.visit": "Kunjungan harus berupa objek JSON.",
    "type.started_at": (
        "started_at harus berupa tanggal dan jam dengan zona waktu, "
        "misalnya 2026-01-05T09:12:00+07:00."
    ),
    "type.answers": "answers harus berupa objek berisi jawaban pertanyaan formulir.",
    "type.photos": "'photos' harus berupa daftar.",
    "type.photo_entry": "Setiap entri foto harus berupa objek.",
    "type.photo_sha256": "sha256 foto harus 64 karakter heksadesimal huruf kecil.",
    "type.photo_filename": "filename foto harus berupa teks.",
    "choice": "{label}: {value} bukan kode dalam daftar '{list}'.",
    "duplicate": "{label} memuat kode yang sama lebih dari sekali.",
    "duplicate.photo": "'{field}' sudah punya foto dalam kunjungan ini.",
    "min": "{label} paling kecil {min}.",
    "max": "{label} paling besar {max}.",
    "min.date": "{label} tidak boleh sebelum {min}.",
    "max.date": "{label} tidak boleh setelah {max}.",
    "min_length": "{label} paling sedikit {min_length} karakter.",
    "max_length": "{label} paling banyak {max_length} karakter.",
    "pattern": "{label} tidak sesuai format yang diminta ({pattern}).",
    "min_count": "{label} perlu paling sedikit {min_count} pilihan.",
    "max_count": "{label} paling banyak {max_count} pilihan.",
    "min_count.repeat": "{label} perlu paling sedikit {min_count} isian.",
    "max_count.repeat": "{label} paling banyak {max_count} isian.",
    "constraint": "{label}: {constraint_message}",
    "constraint.default": "jawaban tidak memenuhi batasan pertanyaan ini.",
    "unknown_field": "'{key}' bukan pertanyaan formulir ini di sini.",
    "unknown_field.top": "'{key}' bukan pertanyaan formulir ini.",
    "unknown_field.note": "{label} adalah catatan dan tidak diisi jawaban.",
    "unknown_field.photo": "'{field}' bukan pertanyaan foto dalam formulir ini.",
    "photo_missing": "{label} menyebut foto yang tidak ada di 'photos'.",
    "rule_error.relevant": "Aturan relevansi pertanyaan ini gagal dijalankan.",
    "rule_error.constraint": "Aturan batasan pertanyaan ini gagal dijalankan.",
    "form_mismatch.form_id": "Kunjungan ini untuk formulir {got}, bukan {want}.",
    "form_mismatch.form_version": (
        "Kunjungan ini diisi dengan versi {got}; kunjungan hanya diperiksa terhadap versi yang "
        "sama, ini versi {want}."
    ),
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def message(key: str, /, **params: Any) -> str:
    """The sentence for ``key`` with its ``{name}`` placeholders filled in (as text)."""
    template = MESSAGES[key]

    def fill(m: re.Match) -> str:
        name = m.group(1)
        return str(params[name]) if name in params else m.group(0)

    return _PLACEHOLDER.sub(fill, template)


def show(value: Any) -> str:
    """A value as the message shows it: text in double quotes, numbers as JavaScript prints
    them, ``true``/``false``/``null``, lists and objects as ``[...]`` and ``{...}``."""
    t = type(value)
    if t is str:
        return json.dumps(value, ensure_ascii=False)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is int or t is float:
        return js_to_string(value)
    if t is list:
        return "[...]"
    return "{...}"


def number(value: Any) -> str:
    """A bound (min, max, a count) as JavaScript's ``String(n)`` prints it."""
    return js_to_string(value)


def render_js() -> str:
    """The table as an ES module for the field app (server/static/lapangan/messages.js)."""
    body = json.dumps(MESSAGES, ensure_ascii=False, indent=2)
    return (
        "// Written by `python -m forms.messages` from forms/messages.py: do not edit here.\n"
        "// The one table of Indonesian validation messages, keyed by error code (or\n"
        "// code.variant); forms/engine.py builds the server's messages from the same file.\n"
        f"export const MESSAGES = Object.freeze({body});\n"
        "export default MESSAGES;\n"
    )


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    if "--check" in sys.argv[1:]:
        ok = JS_PATH.exists() and JS_PATH.read_text(encoding="utf-8") == render_js()
        print(
            "messages.js is up to date"
            if ok
            else f"{JS_PATH} differs: run python -m forms.messages"
        )
        sys.exit(0 if ok else 1)
    JS_PATH.write_text(render_js(), encoding="utf-8")
    print(f"wrote {JS_PATH}")
