"""Field values in the supervisor's words, read from the form version the visit used.

``FormLabels(definition)`` indexes one published form definition once: every question by its
answer path and by the record path it ``verifies`` (``rumah.atap``, ``anggota[].hubungan``),
with its Indonesian label, type and choices. It then turns a conflict's field path and value
into text a person reads:

- ``rumah.atap`` ``4`` → ``Jenis atap terluas`` / ``Asbes`` (the question's and the choice's
  labels);
- ``true``/``false`` → ``Ya``/``Tidak``; a blank (``None``, ``""``, ``[]``) → ``(kosong)``;
  a date → ``5 Januari 2026``;
- a member, in a path (``anggota[NIK=...].pekerjaan``) or as a value, → ``Istri, Y**** H******``
  (the relationship's label and the name, masked where the page masks);
- a whole member (an addition or a removal, ``anggota[+]``, ``anggota[NIK=...]``) → a ``Card``
  of labelled lines, never JSON.

A path the form has no question for keeps its raw text (the masked path where the page masks).
Pure: no Flask, no database; the pages cache one ``FormLabels`` per (form_id, version)
(``server.web.views.form_labels``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sync.privacy import mask_name, mask_number

BLANK = "(kosong)"
YES, NO = "Ya", "Tidak"
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
          "September", "Oktober", "November", "Desember")
WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

MEMBERS = "anggota"
# Record fields no question asks (the registry's own): labels for the pages.
RECORD_LABELS = {"desil": "Desil", "kode_kelurahan": "Kode kelurahan",
                 "lat": "Titik lokasi terdaftar", "lon": "Titik lokasi terdaftar (bujur)",
                 "id_keluarga": "ID keluarga"}
# What a member card shows, in this order (record keys; the form gives labels and choices).
CARD_KEYS = ("hubungan", "jenis_kelamin", "tanggal_lahir", "status_keberadaan", "status_kawin",
             "pekerjaan", "sekolah")
# "Istri/suami" said of one person: by their sex.
SPOUSE = {"P": "Istri", "L": "Suami"}

_SELECTOR = re.compile(r"^anggota\[([^\]]*)\](?:\.(.+))?$")
_SIXTEEN = re.compile(r"(?<!\d)\d{16}(?!\d)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_NAME_KEYS = frozenset({"nama", "nama_responden"})
_NUMBER_KEYS = frozenset({"nik", "no_kk"})


@dataclass(frozen=True)
class Question:
    """One question of the form: its label, type and choices (value → label)."""

    path: str
    label: str
    type: str
    choices: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    """A whole member as the pages show it: a title line and labelled lines."""

    title: str
    lines: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:  # one line, for places without room for a card
        return self.title


@dataclass(frozen=True)
class Change:
    """A conflict's field in words: ``label`` (with ``member`` when the path names one) and the
    registry, base and visit values as text or ``Card``."""

    label: str
    registry: str | Card
    base: str | Card
    visit: str | Card
    member: str | None = None
    known: bool = True  # False: the form has no such question, ``label`` is the raw path
    presence: bool = False  # a whole member (added, removed, replaced)
    member_nik: str | None = None  # the member's NIK (masked where the page masks)
    resolution: str | Card | None = None  # the value a ``set_value`` decision set
    hint: str | None = None  # how to write a value for ``set_value`` (the codes, Ya/Tidak)

    @property
    def title(self) -> str:
        return f"{self.label} ({self.member})" if self.member else self.label


def text_label(label: Any) -> str:
    """A definition's label (a string, or ``{"id": ..., "en": ...}``) in Indonesian."""
    if isinstance(label, dict):
        return str(label.get("id") or next(iter(label.values()), ""))
    return "" if label is None else str(label)


def blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def indonesian_date(value: Any) -> str:
    """``2026-01-05`` (or a date) → ``5 Januari 2026``; other text unchanged."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str) and _DATE.match(value):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.date):
        return f"{value.day} {MONTHS[value.month - 1]} {value.year}"
    return str(value)


def indonesian_datetime(value: Any) -> str:
    """An ISO time with offset → ``5 Januari 2026 09.12 WIB`` (Jakarta's clock)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(WIB)
    return f"{indonesian_date(value.date())} {value:%H.%M} WIB"


def number(value: Any) -> str:
    """``1234.5`` → ``1.234,5``; whole numbers without a decimal comma."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        whole, _, frac = f"{value:,.6f}".rstrip("0").partition(".")
        return whole.replace(",", ".") + "," + frac
    return f"{int(value):,}".replace(",", ".")


def plain(value: Any, key: str | None = None, masked: bool = False) -> str:
    """A value with no question to read it by: Ya/Tidak, (kosong), dates, numbers; NIKs and
    names masked when ``masked``."""
    if blank(value):
        return BLANK
    if value is True:
        return YES
    if value is False:
        return NO
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        if masked and key in _NAME_KEYS:
            return mask_name(value) or BLANK
        if masked and ((key in _NUMBER_KEYS and value.strip().isdigit())
                       or _SIXTEEN.fullmatch(value)):
            return mask_number(value) or BLANK
        if masked:
            value = _SIXTEEN.sub(lambda m: mask_number(m.group(0)), value)
        return indonesian_date(value) if _DATE.match(value) else value
    if isinstance(value, list):
        return ", ".join(plain(v, key, masked) for v in value)
    if isinstance(value, dict) and isinstance(value.get("lat"), int | float) \
            and isinstance(value.get("lon"), int | float):  # a point (a rule's GPS context)
        acc = value.get("accuracy_m")
        return f"{value['lat']:.5f}, {value['lon']:.5f}" + (
            f" (±{number(round(acc))} m)" if isinstance(acc, int | float) else "")
    if isinstance(value, dict):  # a shape no question describes: key: value pairs, not JSON
        return "; ".join(f"{k}: {plain(v, k, masked)}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False, default=str)


class FormLabels:
    """One form definition, indexed for the pages (see the module's docstring)."""

    def __init__(self, definition: dict | None):
        self.definition = definition or {}
        self.questions: dict[str, Question] = {}
        self.groups: dict[str, str] = {}  # group path -> label (rule findings name a group)
        self.members_label = "Anggota keluarga"
        choices = {name: {c.get("value"): text_label(c.get("label")) for c in items or ()}
                   for name, items in (self.definition.get("choices") or {}).items()}
        self._walk(self.definition.get("fields") or (), "", None, choices)

    def _walk(self, fields, prefix: str, record_prefix: str | None, choices: dict) -> None:
        for f in fields:
            name, ftype = f.get("name"), f.get("type")
            if not name:
                continue
            path = f"{prefix}{name}"
            target = f.get("verifies")
            if ftype == "group":
                self.groups[path] = text_label(f.get("label")) or path
                self._walk(f.get("fields") or (), f"{path}.", record_prefix, choices)
                continue
            if ftype == "repeat":
                if record_prefix is None and (target == MEMBERS or name == MEMBERS):
                    self.members_label = text_label(f.get("label")) or self.members_label
                    self._walk(f.get("fields") or (), f"{path}[].", f"{MEMBERS}[].", choices)
                continue
            q = Question(path, text_label(f.get("label")) or path, ftype or "text",
                         choices.get(f.get("choices"), {}))
            self.questions.setdefault(path, q)
            if target:  # the record path it checks: what conflicts name
                self.questions[f"{record_prefix or ''}{target}"] = q

    # --- questions and values ----------------------------------------------------------------

    def question(self, path: str | None) -> Question | None:
        """The question of a record or answer path; a member's path in any selector form."""
        if not path:
            return None
        m = _SELECTOR.match(path)
        if m:
            if not m.group(2):
                return None
            path = f"{MEMBERS}[].{m.group(2)}"
        return self.questions.get(path)

    def label(self, path: str | None) -> str | None:
        """The question's label, or a record field's; None when nothing names it."""
        q = self.question(path)
        if q is not None:
            return q.label
        return self.groups.get(path or "") or RECORD_LABELS.get(path or "")

    def value(self, path: str | None, value: Any, *, masked: bool = False) -> str:
        """``value`` of the question at ``path`` as text (choice labels, Ya/Tidak, dates)."""
        q = self.question(path)
        key = (path or "").rsplit(".", 1)[-1]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value) \
                and (q is None or q.type not in ("select_multiple",)):
            # a rule's list of programs (``["pkh", "bpnt"]``): their questions' labels
            named = [self._named(v) for v in value]
            if all(named):
                return ", ".join(named)
        if q is None or blank(value):
            return plain(value, key, masked)
        if q.type == "photo" and isinstance(value, str) and _SHA.match(value):
            return f"foto {value[:10]}…"
        if q.type == "boolean" and isinstance(value, bool):
            return YES if value else NO
        if q.type == "select_one":
            return q.choices.get(value, plain(value, key, masked))
        if q.type == "select_multiple" and isinstance(value, list):
            return ", ".join(q.choices.get(v, plain(v, key, masked)) for v in value)
        if q.type == "date":
            return indonesian_date(value)
        if q.type == "datetime":
            return indonesian_datetime(value)
        if q.type == "geopoint" and isinstance(value, dict) and "lat" in value:
            acc, lon = value.get("accuracy_m"), value.get("lon")
            text = f"{value['lat']:.5f}, {lon:.5f}" if isinstance(lon, int | float) \
                else plain(value, key, masked)
            return text + (f" (±{number(round(acc))} m)" if isinstance(acc, int | float) else "")
        return plain(value, key, masked)

    def _named(self, name: str) -> str | None:
        """The label of a question named ``name`` at the top or in a group (``pkh``)."""
        q = self.questions.get(name)
        if q is None:
            q = next((q for p, q in self.questions.items()
                      if "[" not in p and p.rsplit(".", 1)[-1] == name), None)
        return q.label if q is not None else None

    def hint(self, path: str | None) -> str | None:
        """How a supervisor writes a value of this question: its codes, Ya/Tidak, a date."""
        q = self.question(path)
        if q is None:
            return None
        if q.type in ("select_one", "select_multiple") and q.choices:
            return "Isi kodenya: " + "; ".join(f"{v} = {t}" for v, t in q.choices.items())
        if q.type == "boolean":
            return "Isi Ya atau Tidak."
        if q.type == "date":
            return "Tulis tanggal sebagai TTTT-BB-HH, misalnya 2026-01-05."
        return None

    # --- members -----------------------------------------------------------------------------

    def relationship(self, member: dict) -> str | None:
        """The member's relationship to the head (``Istri``, ``Anak``), or None."""
        q = self.questions.get(f"{MEMBERS}[].hubungan")
        code = member.get("hubungan")
        if blank(code):
            return None
        text = q.choices.get(code) if q is not None else None
        if text is None:
            return str(code)
        if text.lower() == "istri/suami" and member.get("jenis_kelamin") in SPOUSE:
            return SPOUSE[member["jenis_kelamin"]]
        return text

    def member_name(self, member: dict | None, *, masked: bool = False,
                    nik: str | None = None) -> str:
        """``Istri, Y**** H******``: relationship and name; the NIK when there is no name."""
        member = member if isinstance(member, dict) else {}
        name = member.get("nama")
        name = (mask_name(name) if masked else name) if isinstance(name, str) and name.strip() \
            else None
        nik = member.get("nik") or nik
        if not name and nik:
            name = "NIK " + (mask_number(nik) if masked else nik)
        parts = [p for p in (self.relationship(member), name) if p]
        return ", ".join(parts) if parts else "Anggota tanpa nama"

    def member_card(self, member: Any, *, masked: bool = False,
                    every_answer: bool = False) -> Card | str:
        """A whole member as a card: name and relationship, then NIK, sex, birth date, job...
        (``every_answer``: every answer the member has, in the form's order)."""
        if not isinstance(member, dict):
            return self.value(None, member, masked=masked)
        lines = []
        nik = member.get("nik")
        if not blank(nik):
            lines.append((self._member_label("nik", "NIK"),
                          mask_number(nik) if masked else str(nik)))
        keys = CARD_KEYS
        if every_answer:
            order = [p.split(".", 1)[1] for p in self.questions if p.startswith(f"{MEMBERS}[].")]
            keys = [k for k in order if k in member] + [k for k in member if k not in order]
        for key in keys:
            if key in ("hubungan", "nik", "nama") or key not in member or blank(member.get(key)):
                continue
            lines.append((self._member_label(key, key),
                          self.value(f"{MEMBERS}[].{key}", member[key], masked=masked)))
        return Card(self.member_name(member, masked=masked), tuple(lines))

    def _member_label(self, key: str, default: str) -> str:
        q = self.questions.get(f"{MEMBERS}[].{key}")
        return q.label if q is not None else default

    # --- a conflict's field ------------------------------------------------------------------

    def change(self, path: str | None, registry: Any, base: Any, visit: Any, *,
               masked: bool = False, members: dict[str, dict] | None = None,
               shown_path: str | None = None) -> Change | None:
        """A conflict's field and values in words; None for a finding with no field.

        ``members`` maps a NIK to the family's member (the verified record), to name the
        member a path selects; ``shown_path`` is the path to show when the form has no such
        question (the masked path in lists).
        """
        if not path:
            return None
        m = _SELECTOR.match(path)
        if m is None:
            q_label = self.label(path)
            fmt = lambda v: self.value(path, v, masked=masked)  # noqa: E731
            return Change(q_label or shown_path or path, fmt(registry), fmt(base), fmt(visit),
                          known=q_label is not None, hint=self.hint(path))
        selector, rest = m.group(1), m.group(2)
        member = self._find_member(selector, members, registry, visit, base)
        nik = selector[4:] if selector.startswith("NIK=") else None
        who = self.member_name(member, masked=masked, nik=nik)
        nik = nik or (member or {}).get("nik") or None
        if nik and masked:
            nik = mask_number(str(nik))
        if rest is None:  # a whole member: added, removed or replaced
            status = f"{MEMBERS}[].status_keberadaan"

            def card(v):
                if isinstance(v, dict):
                    return self.member_card(v, masked=masked)
                if isinstance(v, int) and not isinstance(v, bool) and status in self.questions:
                    return self.value(status, v, masked=masked)  # a rule's member status
                return self.value(None, v, masked=masked)
            label = self.members_label
            if blank(registry) and isinstance(visit, dict):
                label += " ditambahkan"
            elif isinstance(registry, dict) and blank(visit):
                label += " dihapus"
            return Change(label, card(registry), card(base), card(visit), member=who,
                          presence=True, member_nik=nik)
        q_label = self.label(path)
        fmt = lambda v: self.value(path, v, masked=masked)  # noqa: E731
        return Change(q_label or shown_path or path, fmt(registry), fmt(base), fmt(visit),
                      member=who, known=q_label is not None, member_nik=nik,
                      hint=self.hint(path))

    @staticmethod
    def _find_member(selector: str, members: dict[str, dict] | None, *values) -> dict | None:
        if selector.startswith("NIK="):
            nik = selector[4:]
            if members and nik in members:
                return members[nik]
        for v in values:  # an added or removed member is its own value
            if isinstance(v, dict) and ("nama" in v or "nik" in v):
                return v
        if selector.isdigit() and members:
            return members.get(f"#{selector}")
        return None


def members_by_nik(record: dict | None) -> dict[str, dict]:
    """The record's members by NIK (and ``#i`` by position), for ``FormLabels.change``."""
    out: dict[str, dict] = {}
    for i, m in enumerate((record or {}).get(MEMBERS) or ()):
        if isinstance(m, dict):
            out[f"#{i}"] = m
            if m.get("nik"):
                out.setdefault(str(m["nik"]), m)
    return out
