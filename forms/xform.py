"""The XForm of a Tapak form definition, and XForm submissions mapped back to Tapak visits.

Flask-free: the OpenRosa endpoints (``server/openrosa/``) call ``build_xform`` once per form
version and store the bytes, and ``submission_to_visit`` for every submission. The XForm is built
with pyxform from an XLSForm-shaped dict (``xlsform_of``), never validated with Java.

How the definition becomes an XForm (docs/openrosa.md has the full table):

- the root element is ``data``; a question's node is ``/data/<path>`` where ``<path>`` is its
  answer path (``/data/rumah/lantai``, ``/data/anggota/nik``);
- ``boolean`` is a ``select_one`` of the list ``tapak_ya_tidak`` (codes ``yes``/``no``);
  ``photo`` is ``image`` with ``max-pixels=1600``; ``datetime`` is ``dateTime``;
- rules are translated by ``forms.xpath``; ``min``/``max``/lengths/``pattern``/counts are added to
  the constraint; a group's or a repeat's constraint is set on the questions of its entries that
  the rule reads (XForms has no constraint on a repeat);
- an ``age_helper`` is a ``calculate`` beside its date;
- the family is the first question, ``_keluarga``, a ``select_one_from_file households.csv``;
  choosing it sets (``setvalue``, pyxform's ``trigger``) every prefilled question and
  ``_base_version``, so that prefilled answers stay editable;
- a repeat with ``prefill`` (the members) is counted: ``jr:count`` is the number of the family's
  rows in ``members.csv`` plus ``_<repeat>_baru``, a question "how many new members"; each new
  entry takes its prefilled answers from its row (``odk-new-repeat``), entries past the family's
  rows start as new members (``status_keberadaan`` 5 when the form has that question);
- ``_mulai``/``_selesai`` are the ``start``/``end`` timestamps (``started_at``/``ended_at``).
"""

from __future__ import annotations

import re
from typing import Any

from forms.xpath import FormScope, XPathError, age_xpath, literal, to_xpath, yes_no

__all__ = [
    "BOOLEAN_LIST",
    "FAMILY",
    "HOUSEHOLD_COLUMNS",
    "MEMBER_COLUMNS",
    "XFormError",
    "build_xform",
    "column_name",
    "csv_value",
    "submission_to_visit",
    "xlsform_of",
]

ROOT = "data"
FAMILY = "_keluarga"
BASE_VERSION = "_base_version"
REVISIT_NOTE = "_catatan_kunjungan_ulang"
STARTED = "_mulai"
ENDED = "_selesai"
BOOLEAN_LIST = "tapak_ya_tidak"
MAX_PIXELS = 1600
NEW_MEMBER_STATUS = ("status_keberadaan", 5)
LANGS = (("id", "Bahasa Indonesia (id)"), ("en", "English (en)"))

# households.csv: one row per family assigned to the enumerator (the server builds it).
HOUSEHOLD_COLUMNS = ("name", "label", "base_version", "visited", "revisit", "revisit_note")
# members.csv: one row per registry member of those families, in the registry's order.
MEMBER_COLUMNS = ("name", "household", "pos")

_TYPES = {
    "text": "text",
    "integer": "integer",
    "decimal": "decimal",
    "date": "date",
    "datetime": "dateTime",
    "geopoint": "geopoint",
    "photo": "image",
    "note": "note",
}


class XFormError(ValueError):
    """The definition cannot be turned into an XForm (a rule without XPath, ...)."""


def column_name(path: tuple[str, ...] | str) -> str:
    """The CSV column of a question's answer path: ``rumah.lantai`` is ``rumah__lantai``.

    In households.csv the path is from the form's root; in members.csv from the entry.
    """
    if isinstance(path, str):
        path = tuple(path.split("."))
    return "__".join(path)


def csv_value(value: Any) -> str:
    """A registry value as the CSVs hold it (booleans ``yes``/``no``, blank for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _labels(label: Any, column: str) -> dict[str, str]:
    if label is None:
        return {}
    if isinstance(label, str):
        label = {"id": label}
    out = {}
    for code, name in LANGS:
        text = label.get(code) or (label.get("id") if code == "id" else None)
        if text:
            out[f"{column}::{name}"] = text
    return out


def _ref(path: tuple[str, ...]) -> str:
    return "/" + "/".join((ROOT,) + path)


def _messages(parts: list[tuple[str, str]]) -> dict[str, str]:
    if not parts:
        return {}
    return {
        f"constraint_message::{name}": " ".join(p[i] for p in parts)
        for i, (_code, name) in enumerate(LANGS)
    }


class _Builder:
    def __init__(self, definition: dict):
        self.d = definition
        self.scope = FormScope(definition, ROOT)
        self.rows: list[dict] = []
        self.attached: dict[tuple, list] = {}
        self.relevance: list[str] = []  # relevance of the enclosing groups and repeats
        self.prefilled_repeat: tuple | None = None
        self.has_prefill = self._any_prefill(definition["fields"])

    @staticmethod
    def _any_prefill(fields: list) -> bool:
        return any(
            "prefill" in f
            or (f["type"] in ("group", "repeat") and _Builder._any_prefill(f["fields"]))
            for f in fields
        )

    def xp(self, rule: Any, at: tuple, **kw) -> str:
        try:
            return to_xpath(rule, self.scope, at, **kw)
        except XPathError as exc:
            raise XFormError(f"{'.'.join(at)}: {exc}") from exc

    def build(self) -> dict:
        d = self.d
        hh = "instance('households')/root/item[name = ${" + FAMILY + "}]"
        self.rows.append({"type": "start", "name": STARTED})
        self.rows.append({"type": "end", "name": ENDED})
        family = {
            "type": "select_one_from_file households.csv",
            "name": FAMILY,
            "required": "yes",
            **_labels({"id": "Keluarga yang dikunjungi", "en": "Family visited"}, "label"),
            **_labels(
                {
                    "id": "Pilih keluarga dari daftar tugas Anda.",
                    "en": "Choose the family from your assignments.",
                },
                "hint",
            ),
        }
        self.rows.append(family)
        if self.has_prefill:
            self.rows.append({"type": "csv-external", "name": "members"})
        self.rows.append(
            {
                "type": "calculate",
                "name": BASE_VERSION,
                "calculation": f"{hh}/base_version",
                "trigger": "${" + FAMILY + "}",
            }
        )
        self.rows.append(
            {
                "type": "calculate",
                "name": REVISIT_NOTE,
                "calculation": f"{hh}/revisit_note",
                "trigger": "${" + FAMILY + "}",
            }
        )
        self.rows.append(
            {
                "type": "note",
                "name": "_kunjungan_ulang",
                "relevant": f"{hh}/revisit = 'yes'",
                **_labels(
                    {
                        "id": "Kunjungan ulang diminta pengawas: ${" + REVISIT_NOTE + "}",
                        "en": "Revisit requested by the supervisor: ${" + REVISIT_NOTE + "}",
                    },
                    "label",
                ),
            }
        )
        self.fields(d["fields"], ())
        choices = [
            {
                "list_name": BOOLEAN_LIST,
                "name": "yes",
                **_labels({"id": "Ya", "en": "Yes"}, "label"),
            },
            {
                "list_name": BOOLEAN_LIST,
                "name": "no",
                **_labels({"id": "Tidak", "en": "No"}, "label"),
            },
        ]
        for list_name, options in (d.get("choices") or {}).items():
            for o in options:
                choices.append(
                    {
                        "list_name": list_name,
                        "name": str(o["value"]),
                        **_labels(o["label"], "label"),
                    }
                )
        instance_name = "concat(${" + FAMILY + "}, ' ', " + hh + "/label)"
        settings = {
            "form_id": d["form_id"],
            "version": str(d["version"]),
            "default_language": LANGS[0][1],
            "instance_name": instance_name,
            **_labels(d["title"], "form_title"),
        }
        settings["form_title"] = settings.pop(f"form_title::{LANGS[0][1]}", d["form_id"])
        settings = {k: v for k, v in settings.items() if not k.startswith("form_title::")}
        return {"survey": self.rows, "choices": choices, "settings": [settings]}

    # -- questions --------------------------------------------------------

    def fields(self, fields: list, prefix: tuple) -> None:
        for f in fields:
            self.field(f, prefix)

    def field(self, f: dict, prefix: tuple) -> None:
        path = prefix + (f["name"],)
        ftype = f["type"]
        row: dict[str, Any] = {"name": f["name"], **_labels(f.get("label"), "label")}
        row.update(_labels(f.get("hint"), "hint"))
        if "relevant" in f:
            row["relevant"] = self.xp(f["relevant"], path)
        if ftype == "group":
            row["type"] = "begin_group"
            self.rows.append(row)
            self.relevance.append(row.get("relevant", ""))
            self.fields(f["fields"], path)
            self.relevance.pop()
            self.rows.append({"type": "end_group"})
            return
        if ftype == "repeat":
            self.repeat(f, path, row)
            return
        if ftype == "boolean":
            row["type"] = f"select_one {BOOLEAN_LIST}"
        elif ftype in ("select_one", "select_multiple"):
            row["type"] = f"{ftype} {f['choices']}"
        else:
            row["type"] = _TYPES[ftype]
        if ftype == "photo":
            row["parameters"] = f"max-pixels={MAX_PIXELS}"
        if f.get("required"):
            row["required"] = "yes"
            row.update(
                _labels(
                    {"id": "Wajib diisi.", "en": "This answer is required."}, "required_message"
                )
            )
        constraint, messages = self.constraint(f, path)
        for extra_rule, message in self.attached.get(path, []):
            constraint.append(extra_rule)
            messages.append(message)
        if constraint:
            row["constraint"] = (
                " and ".join(f"({c})" for c in constraint) if len(constraint) > 1 else constraint[0]
            )
            row.update(_messages(messages))
        if "prefill" in f:
            self.prefill(f, path, row)
        elif (f["name"], ftype) == NEW_MEMBER_STATUS[:1] + ("select_one",) and self._in_prefilled(
            path
        ):
            # entries past the family's rows in members.csv are new members
            count = "count(instance('members')/root/item[household = ${" + FAMILY + "}])"
            row["default"] = f"if(position(current()/..) > {count}, {NEW_MEMBER_STATUS[1]}, '')"
        self.rows.append(row)
        if ftype == "date" and f.get("age_helper"):
            self.rows.append(
                {
                    "type": "calculate",
                    "name": f["age_helper"],
                    "calculation": age_xpath("${" + f["name"] + "}"),
                }
            )

    def _in_prefilled(self, path: tuple) -> bool:
        repeats = self.scope.repeats_around(path)
        if not repeats:
            return False
        node = self.d["fields"]
        found = None
        for name in repeats[0]:
            found = next(x for x in node if x["name"] == name)
            node = found.get("fields", [])
        return found is not None and "prefill" in found

    def constraint(self, f: dict, path: tuple) -> tuple[list[str], list[tuple[str, str]]]:
        parts: list[str] = []
        messages: list[tuple[str, str]] = []
        ftype = f["type"]
        lo, hi = f.get("min"), f.get("max")
        if ftype in ("integer", "decimal"):
            if lo is not None:
                parts.append(f". >= {literal(lo)}")
            if hi is not None:
                parts.append(f". <= {literal(hi)}")
            if lo is not None or hi is not None:
                low = literal(lo) if lo is not None else "…"
                high = literal(hi) if hi is not None else "…"
                rng = f"{low}–{high}"
                messages.append((f"Nilai harus {rng}.", f"The value must be {rng}."))
        if ftype == "date":
            if lo is not None:
                parts.append(f"decimal-date-time(.) >= decimal-date-time('{lo}')")
                messages.append((f"Tanggal paling awal {lo}.", f"The earliest date is {lo}."))
            if hi is not None:
                parts.append(f"decimal-date-time(.) <= decimal-date-time('{hi}')")
                messages.append((f"Tanggal paling akhir {hi}.", f"The latest date is {hi}."))
        if ftype == "text":
            mn, mx = f.get("min_length"), f.get("max_length")
            if mn is not None:
                parts.append(f"string-length(.) >= {mn}")
            if mx is not None:
                parts.append(f"string-length(.) <= {mx}")
            if mn is not None or mx is not None:
                messages.append(
                    (
                        f"Panjang {mn or 0}–{mx or '…'} karakter.",
                        f"Length {mn or 0}–{mx or '…'} characters.",
                    )
                )
            if f.get("pattern"):
                parts.append(f"regex(., {literal('^(?:' + f['pattern'] + ')$')})")
                messages.append(
                    (f"Format harus {f['pattern']}.", f"The format must be {f['pattern']}.")
                )
        if ftype == "select_multiple":
            mn, mx = f.get("min_count"), f.get("max_count")
            if mn is not None:
                parts.append(f"count-selected(.) >= {mn}")
            if mx is not None:
                parts.append(f"count-selected(.) <= {mx}")
            if mn is not None or mx is not None:
                messages.append(
                    (f"Pilih {mn or 0}–{mx or '…'} jawaban.", f"Choose {mn or 0}–{mx or '…'}.")
                )
        if "constraint" in f:
            parts.append(self.xp(f["constraint"], path, constraint=True))
            msg = f.get("constraint_message") or {
                "id": "Jawaban tidak memenuhi syarat.",
                "en": "The answer does not meet its constraint.",
            }
            msg = {"id": msg} if isinstance(msg, str) else msg
            messages.append((msg.get("id", ""), msg.get("en") or msg.get("id", "")))
        return parts, messages

    def prefill(self, f: dict, path: tuple, row: dict) -> None:
        repeats = self.scope.repeats_around(path)
        if not repeats:
            column = column_name(path)
            row["calculation"] = (
                "instance('households')/root/item[name = ${" + FAMILY + "}]/" + column
            )
            row["trigger"] = "${" + FAMILY + "}"
            return
        if len(repeats) > 1 or self.prefilled_repeat not in (None, repeats[0]):
            raise XFormError(
                f"{'.'.join(path)}: only one prefilled repeat, not nested, fits members.csv"
            )
        self.prefilled_repeat = repeats[0]
        column = column_name(path[len(repeats[0]) :])
        # inside the members repeat: the row of this entry's position (odk-new-repeat)
        member = (
            "instance('members')/root/item[household = ${" + FAMILY + "}]"
            "[position() = position(current()/..)]/" + column
        )
        row["default"] = member

    def repeat(self, f: dict, path: tuple, row: dict) -> None:
        # XForms has no constraint, required or count check on a repeat itself: the checks go
        # to the questions of its entries that read them, or to the count question.
        checks: list[tuple[str, tuple[str, str]]] = []
        if "constraint" in f:
            readers = (
                _read_children(f["constraint"], f["fields"])
                or [c["name"] for c in f["fields"] if c["type"] not in ("group", "repeat", "note")][
                    :1
                ]
            )
            msg = f.get("constraint_message") or "Jawaban tidak memenuhi syarat."
            msg = {"id": msg} if isinstance(msg, str) else msg
            for name in readers:
                child = path + (name,)
                self.attached.setdefault(child, []).append(
                    (
                        self.xp(f["constraint"], path, constraint=True, context=child),
                        (msg.get("id", ""), msg.get("en") or msg.get("id", "")),
                    )
                )
        lo = f.get("min_count", 1 if f.get("required") else None)
        hi = f.get("max_count")
        ref = _ref(path)
        if lo is not None:
            checks.append(
                (f"count({ref}) >= {lo}", (f"Minimal {lo} entri.", f"At least {lo} entries."))
            )
        if hi is not None:
            checks.append(
                (f"count({ref}) <= {hi}", (f"Maksimal {hi} entri.", f"At most {hi} entries."))
            )
        row["type"] = "begin_repeat"
        if "prefill" in f:
            count = "count(instance('members')/root/item[household = ${" + FAMILY + "}])"
            extra = f"_{f['name']}_baru"
            self.rows.append(
                {
                    "type": "integer",
                    "name": extra,
                    "required": "yes",
                    "default": "0",
                    **({"relevant": row["relevant"]} if "relevant" in row else {}),
                    **_labels(
                        {
                            "id": f"Jumlah anggota baru (belum terdaftar) — {_label_id(f)}",
                            "en": f"Number of new entries (not yet registered) — {_label_en(f)}",
                        },
                        "label",
                    ),
                    "constraint": " and ".join(
                        [". >= 0"]
                        + [c.replace(f"count({ref})", f"({count} + .)") for c, _ in checks]
                    ),
                    **_messages(
                        [("Jumlah tidak sah.", "Invalid number.")] + [m for _, m in checks]
                    ),
                }
            )
            # entries are made when the repeat becomes relevant (after consent), so that their
            # odk-new-repeat prefill runs on relevant nodes (engines drop values set before)
            conditions = [c for c in self.relevance + [row.get("relevant")] if c]
            total = f"{count} + coalesce(${{{extra}}}, 0)"
            if conditions:
                total = f"if({' and '.join(f'({c})' for c in conditions)}, {total}, 0)"
            row["repeat_count"] = total
        else:
            # an entry-less repeat cannot carry a check: counts are checked on its first question
            first = next(
                (c["name"] for c in f["fields"] if c["type"] not in ("group", "repeat", "note")),
                None,
            )
            if first is not None and checks:
                self.attached.setdefault(path + (first,), []).extend(
                    (c.replace(ref, f"{ref}"), m) for c, m in checks
                )
        self.rows.append(row)
        self.relevance.append(row.get("relevant", ""))
        self.fields(f["fields"], path)
        self.relevance.pop()
        self.rows.append({"type": "end_repeat"})


def _label_id(f: dict) -> str:
    label = f.get("label")
    return label if isinstance(label, str) else (label or {}).get("id", f["name"])


def _label_en(f: dict) -> str:
    label = f.get("label")
    return label if isinstance(label, str) else (label or {}).get("en") or _label_id(f)


def _read_children(rule: Any, fields: list) -> list[str]:
    """Names of the entry questions a repeat's rule reads (bare vars inside its iterators)."""
    names = {c["name"] for c in fields if c["type"] not in ("group", "repeat", "note")}
    found: list[str] = []

    def walk(r: Any) -> None:
        if isinstance(r, dict):
            for op, args in r.items():
                if op == "var":
                    v = args[0] if isinstance(args, list) and args else args
                    if isinstance(v, str):
                        head = v.split(".")[-1] if v.startswith("current.") else v.split(".")[0]
                        if head in names and head not in found:
                            found.append(head)
                else:
                    walk(args)
        elif isinstance(r, list):
            for x in r:
                walk(x)

    walk(rule)
    return found


def _sheet(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    return [{k: v for k, v in r.items() if v not in (None, "")} for r in rows], [
        {c: None for c in columns}
    ]


def xlsform_of(definition: dict) -> dict:
    """The XLSForm (pyxform's dict of sheets) of a definition."""
    book = _Builder(definition).build()
    out: dict[str, Any] = {}
    for sheet in ("survey", "choices", "settings"):
        rows, header = _sheet(book[sheet])
        out[sheet] = rows
        out[f"{sheet}_header"] = header
    return out


def build_xform(definition: dict) -> bytes:
    """The XForm (UTF-8 XML bytes) of a published definition; deterministic for a definition."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    book = xlsform_of(definition)
    try:
        result = convert(xlsform=book, validate=False, form_name=ROOT, pretty_print=True)
    except PyXFormError as exc:
        raise XFormError(f"pyxform refused the form: {exc}") from exc
    return result.xform.encode("utf-8")


# ---------------------------------------------------------------------------
# Submissions: XForm instance XML -> Tapak visit
# ---------------------------------------------------------------------------

_INT_RE = re.compile(r"-?\d+\Z")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _convert(f: dict, text: str, choices: dict, problems: list, path: str) -> Any:
    ftype = f["type"]
    try:
        if ftype == "integer":
            return int(text)
        if ftype == "decimal":
            v = float(text)
            return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v
        if ftype == "boolean":
            if text not in ("yes", "no"):
                raise ValueError(text)
            return text == "yes"
        if ftype in ("select_one", "select_multiple"):
            ints = all(type(o["value"]) is int for o in choices.get(f["choices"], []))
            codes = text.split() if ftype == "select_multiple" else [text]
            values = [int(c) if ints and _INT_RE.match(c) else c for c in codes]
            return values if ftype == "select_multiple" else values[0]
        if ftype == "geopoint":
            parts = [float(x) for x in text.split()]
            if len(parts) < 2:
                raise ValueError(text)
            geo: dict[str, Any] = {"lat": parts[0], "lon": parts[1]}
            if len(parts) > 2:
                geo["altitude_m"] = parts[2]
            if len(parts) > 3:
                geo["accuracy_m"] = parts[3]
            return geo
    except ValueError:
        problems.append(
            {
                "path": f"answers.{path}",
                "code": "type",
                "message": f"'{text}' is not a valid {ftype} answer.",
            }
        )
        return text
    return text  # text, date, datetime, photo (the file name)


def _read(element, fields: list, choices: dict, prefix: str, photos: list, problems: list) -> dict:
    by_name = {f["name"]: f for f in fields}
    out: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        f = by_name.get(name)
        if f is None:
            continue  # XForm-only nodes (_keluarga, helpers, meta...) are read by the caller
        ftype = f["type"]
        path = f"{prefix}{name}"
        if ftype == "group":
            sub = _read(child, f["fields"], choices, path + ".", photos, problems)
            if sub:
                out[name] = sub
        elif ftype == "repeat":
            entries = out.setdefault(name, [])
            i = len(entries)
            entries.append(_read(child, f["fields"], choices, f"{path}[{i}].", photos, problems))
        elif ftype == "note":
            continue
        else:
            text = (child.text or "").strip()
            if not text:
                continue
            out[name] = _convert(f, text, choices, problems, path)
            if ftype == "photo":
                photos.append({"field": path, "filename": text})
    return out


def submission_to_visit(definition: dict, xml: bytes | str) -> tuple[dict, list[dict]]:
    """A Tapak visit (push format, without photo hashes) from an XForm submission instance.

    Returns ``(visit, problems)``. The visit has ``uuid`` (the instanceID without ``uuid:``),
    ``form_id``, ``form_version``, ``household_id`` (``_keluarga``), ``base_version``,
    ``started_at``/``ended_at`` (``_mulai``/``_selesai``), ``answers`` and ``photos``
    (``{"field", "filename"}``; the server adds each file's ``sha256`` as it arrives).
    ``problems`` lists answers that are not of their type (``{"path", "code", "message"}``);
    the visit then still goes through ``forms.validate_visit``. Raises ``XFormError`` for XML
    that is not well formed, forbidden (entities, DTDs: defusedxml) or not this form.
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(xml)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise XFormError(f"the submission is not acceptable XML: {exc}") from exc
    form_id = root.get("id")
    if form_id != definition["form_id"]:
        raise XFormError(f"the submission is for form {form_id!r}, not {definition['form_id']!r}")
    version = root.get("version")
    if version is None or not _INT_RE.match(version):
        raise XFormError(f"the submission's form version {version!r} is not a number")
    photos: list[dict] = []
    problems: list[dict] = []
    choices = definition.get("choices") or {}
    answers = _read(root, definition["fields"], choices, "", photos, problems)
    answers = {k: v for k, v in answers.items() if v != []}
    extra = {_local(c.tag): c for c in root}

    def text(name: str) -> str | None:
        el = extra.get(name)
        return (el.text or "").strip() or None if el is not None else None

    meta = extra.get("meta")
    instance_id = None
    if meta is not None:
        for c in meta:
            if _local(c.tag) == "instanceID":
                instance_id = (c.text or "").strip()
    if not instance_id:
        raise XFormError("the submission has no meta/instanceID")
    base = text(BASE_VERSION)
    visit: dict[str, Any] = {
        "uuid": instance_id.removeprefix("uuid:"),
        "form_id": form_id,
        "form_version": int(version),
        "household_id": text(FAMILY),
        "base_version": int(base) if base and _INT_RE.match(base) else None,
        "started_at": text(STARTED),
        "ended_at": text(ENDED),
        "answers": answers,
        "photos": photos,
    }
    return visit, problems


# ---------------------------------------------------------------------------
# Per-enumerator prefill: households.csv and members.csv
# ---------------------------------------------------------------------------


def _prefill_fields(fields: list, prefix: tuple, out: list) -> None:
    for f in fields:
        path = prefix + (f["name"],)
        if f["type"] == "group":
            _prefill_fields(f["fields"], path, out)
        elif f["type"] == "repeat":
            if "prefill" in f:
                out.append((path, f))
            _prefill_fields(f["fields"], path, out)
        elif "prefill" in f:
            out.append((path, f))


def prefill_columns(definition: dict) -> tuple[list[str], list[str], tuple | None]:
    """The columns of households.csv and members.csv, and the prefilled repeat's path."""
    found: list = []
    _prefill_fields(definition["fields"], (), found)
    scope = FormScope(definition, ROOT)
    households = list(HOUSEHOLD_COLUMNS)
    members = list(MEMBER_COLUMNS)
    repeat = None
    for path, f in found:
        if f["type"] == "repeat":
            repeat = path
            continue
        around = scope.repeats_around(path)
        if around:
            members.append(column_name(path[len(around[0]) :]))
        else:
            households.append(column_name(path))
    return households, members, repeat


def _at(values: Any, path: tuple) -> Any:
    for name in path:
        if not isinstance(values, dict):
            return None
        values = values.get(name)
    return values


def _csv(columns: list[str], rows: list[dict]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([csv_value(r.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def prefill_csvs(form: Any, families: list[dict]) -> tuple[bytes, bytes]:
    """``(households.csv, members.csv)`` bytes for one enumerator's families.

    ``form``: a ``forms.Form`` (or a definition). Each family is ``{"household_id", "label",
    "base_version", "visited", "revisit", "revisit_note", "record"}`` where ``record`` is the
    verified record the answers are prefilled from (``forms.prefill``: values that would not
    pass their question's checks are left blank). Rows keep the order given; the bytes depend
    only on the input, so their md5 is a stable manifest hash.
    """
    from forms.engine import Form, load_form
    from forms.prefill import prefill

    if not isinstance(form, Form):
        form = load_form(form)
    hh_cols, mem_cols, repeat = prefill_columns(form.definition)
    # each column's answer path, split once for all the families
    hh_paths = [(col, tuple(col.split("__"))) for col in hh_cols[len(HOUSEHOLD_COLUMNS):]]
    mem_paths = [(col, tuple(col.split("__"))) for col in mem_cols[len(MEMBER_COLUMNS):]]
    households: list[dict] = []
    members: list[dict] = []
    for fam in families:
        answers = prefill(form, fam.get("record") or {})
        hid = str(fam["household_id"])
        row = {
            "name": hid,
            "label": fam.get("label") or hid,
            "base_version": fam.get("base_version"),
            "visited": bool(fam.get("visited")),
            "revisit": bool(fam.get("revisit")),
            "revisit_note": fam.get("revisit_note"),
        }
        for col, path in hh_paths:
            row[col] = _at(answers, path)
        households.append(row)
        if repeat is not None:
            for pos, entry in enumerate(_at(answers, repeat) or [], start=1):
                mrow = {"name": f"{hid}-{pos}", "household": hid, "pos": pos}
                for col, path in mem_paths:
                    mrow[col] = _at(entry, path)
                members.append(mrow)
    return _csv(hh_cols, households), _csv(mem_cols, members)
