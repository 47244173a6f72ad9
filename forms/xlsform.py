"""XLSForm workbooks (``.xlsx``) to Tapak form definitions, and back.

Form designers author in Excel as they do for ODK and Kobo; ``definition_from_xlsform`` reads the
``survey``, ``choices`` and ``settings`` sheets into a definition that ``forms.check_definition``
accepts, with the XPath of ``relevant`` and ``constraint`` translated back to JsonLogic
(``forms.xpath.to_jsonlogic``). ``xlsform_from_definition`` writes a definition as such a
workbook, so that a definition survives the trip JSON -> XLSForm -> JSON unchanged.

What XLSForm has no column for travels in ``tapak::`` columns (XLSForm tools ignore extra
columns): ``tapak::prefill``, ``tapak::verifies``, ``tapak::example``, ``tapak::pattern``,
``tapak::min``/``tapak::max``, ``tapak::min_length``/``tapak::max_length``,
``tapak::min_count``/``tapak::max_count``, ``tapak::age_helper``, ``tapak::type``, and
``tapak::relevant``/``tapak::constraint`` (the JsonLogic itself, see below). A boolean is
``select_one tapak_ya_tidak`` (codes ``yes``/``no``, as in the XForm Tapak serves), or any
yes/no ``select_one`` with ``tapak::type`` = ``boolean``.

Whatever cannot be translated is refused: ``XLSFormError.errors`` lists every problem at once,
each with its sheet, row number (as Excel shows it) and a reason. docs/openrosa.md has the full
table.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
from pathlib import Path
from typing import Any

from forms.definition import check_definition
from forms.xform import BOOLEAN_LIST
from forms.xpath import FormScope, XPathError, to_jsonlogic, to_xpath

__all__ = [
    "XLSFormError",
    "count_questions",
    "definition_from_xlsform",
    "load_xlsform",
    "save_xlsform",
    "xlsform_from_definition",
]

SURVEY, CHOICES, SETTINGS = "survey", "choices", "settings"
# Column names of the languages Tapak writes (the same as the XForm's itext languages).
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English"}
_LANG_WORDS = {
    "indonesian": "id",
    "indonesia": "id",
    "bahasa indonesia": "id",
    "bahasa": "id",
    "english": "en",
    "inggris": "en",
    "bahasa inggris": "en",
}
_LABELLED = ("label", "hint", "constraint_message", "required_message")
_TYPE_ALIASES = {
    "text": "text",
    "string": "text",
    "integer": "integer",
    "int": "integer",
    "decimal": "decimal",
    "date": "date",
    "datetime": "datetime",
    "geopoint": "geopoint",
    "image": "photo",
    "photo": "photo",
    "note": "note",
}
_CONTAINERS = {"begin_group": "group", "begin_repeat": "repeat"}
_ENDS = {"end_group": "group", "end_repeat": "repeat"}
# Metadata XLSForm types Tapak records itself (started_at, ended_at, the visit's date, device).
_SKIPPED_META = {"start", "end", "today", "deviceid", "audit"}
_TAPAK_SURVEY = (
    "type",
    "relevant",
    "constraint",
    "min",
    "max",
    "min_length",
    "max_length",
    "pattern",
    "min_count",
    "max_count",
    "age_helper",
    "prefill",
    "verifies",
    "example",
)
# XLSForm columns that change behaviour and that Tapak has no way to keep: a value refuses the row.
_REFUSED_COLUMNS = {
    "default": "Tapak has no default answers (use tapak::prefill for answers from the record)",
    "calculation": "Tapak has no calculated questions",
    "read_only": "Tapak has no read-only questions",
    "readonly": "Tapak has no read-only questions",
    "choice_filter": "Tapak has no choice filters",
    "repeat_count": "Tapak repeats are not counted (use tapak::min_count / tapak::max_count)",
    "trigger": "Tapak has no triggers",
}
# Cosmetic XLSForm columns: dropped with a warning.
_DROPPED_COLUMNS = ("appearance", "parameters", "guidance_hint", "media", "image", "audio", "video")
_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_TRUE = {"yes", "true", "true()", "1"}
_FALSE = {"no", "false", "false()", "0"}


class XLSFormError(ValueError):
    """The workbook cannot be converted; ``errors`` lists every problem.

    Each problem is ``{"sheet", "row", "message"}`` (``row`` as Excel numbers it, the header
    being row 1; ``None`` for a missing sheet).
    """

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("\n".join(describe(e) for e in errors))


def describe(problem: dict) -> str:
    """``sheet 'survey' row 12: ...`` for one problem or warning."""
    where = f"sheet '{problem['sheet']}'"
    if problem.get("row") is not None:
        where += f" row {problem['row']}"
    return f"{where}: {problem['message']}"


# ---------------------------------------------------------------------------
# Reading the workbook
# ---------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, _dt.datetime):
        return value.date().isoformat() if value.time() == _dt.time() else value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def _text(value: Any) -> str | None:
    """A cell as text (numbers as Excel shows them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _read_sheets(source: Any) -> dict[str, tuple[list[str], list[tuple[int, dict]]]]:
    """sheet name (lowercase) -> (header, [(row number, {column: value})]), blank rows left out."""
    from openpyxl import load_workbook

    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    book = load_workbook(source, read_only=True, data_only=True)
    out: dict[str, tuple[list[str], list[tuple[int, dict]]]] = {}
    try:
        for ws in book.worksheets:
            ws.reset_dimensions()  # some tools write a wrong sheet size; read every row
            rows = ws.iter_rows(values_only=True)
            header_row = next(rows, None) or ()
            header = [(str(h).strip() if h is not None else "") for h in header_row]
            data = []
            for number, values in enumerate(rows, start=2):
                row = {}
                for col, v in zip(header, values, strict=False):
                    v = _cell(v)
                    if col and v is not None:
                        row[col] = v
                if row:
                    data.append((number, row))
            out[ws.title.strip().lower()] = (header, data)
    finally:
        book.close()
    return out


def _language(suffix: str) -> str | None:
    m = re.search(r"\(([a-z]{2})\)\s*\Z", suffix)
    if m:
        return m.group(1)
    return _LANG_WORDS.get(suffix.strip().lower())


def _split(column: str) -> tuple[str, str | None]:
    """``label::English (en)`` -> (``label``, ``English (en)``); ``tapak::x`` keeps its prefix."""
    parts = column.split("::")
    if parts[0].lower() == "tapak" and len(parts) > 1:
        base, rest = f"tapak::{parts[1]}", parts[2:]
    else:
        base, rest = parts[0], parts[1:]
    return base.strip().lower(), ("::".join(rest) if rest else None)


class _Reader:
    def __init__(self, sheets: dict):
        self.sheets = sheets
        self.errors: list[dict] = []
        self.warnings: list[dict] = []
        self.where: dict[str, tuple[str, int | None]] = {}  # definition path -> (sheet, row)
        self.row_errors: set[tuple[str, int | None, str]] = set()
        self.rules: list[tuple] = []
        self.languages: dict[str, dict[str, str]] = {}  # sheet -> column -> language code

    def error(self, sheet: str, row: int | None, message: str, key: str = "") -> None:
        self.errors.append({"sheet": sheet, "row": row, "message": message})
        self.row_errors.add((sheet, row, key))

    def warn(self, sheet: str, row: int | None, message: str) -> None:
        self.warnings.append({"sheet": sheet, "row": row, "message": message})

    # -- columns and labels ----------------------------------------------

    def columns(self, sheet: str, header: list[str], known: set[str], tapak: set[str]) -> None:
        """Check the header once: languages of label columns, tapak:: columns, refused ones."""
        langs: dict[str, str] = {}
        dropped: set[str] = set()
        for col in header:
            if not col:
                continue
            base, suffix = _split(col)
            if base.startswith("tapak::"):
                name = base.removeprefix("tapak::")
                if name not in tapak:
                    self.error(
                        sheet,
                        1,
                        f"unknown Tapak column '{col}' (one of: "
                        + ", ".join(f"tapak::{t}" for t in sorted(tapak))
                        + ")",
                    )
                    continue
            if suffix is not None and (
                base in _LABELLED
                or base in ("form_title",)
                or base in ("tapak::description", "tapak::title")
            ):
                code = _language(suffix)
                if code is None:
                    self.error(
                        sheet,
                        1,
                        f"column '{col}': cannot tell its language; write it as "
                        f"'{base}::Language (xx)' with a 2-letter code, e.g. "
                        f"'{base}::English (en)'",
                    )
                    continue
                langs[col] = code
            elif base not in known and not base.startswith("tapak::"):
                if base in _DROPPED_COLUMNS or base.startswith(("media", "bind", "body")):
                    dropped.add(col)
        self.languages[sheet] = langs
        self._dropped = dropped

    def label(self, sheet: str, number: int, row: dict, base: str) -> Any:
        plain = None
        by_lang: dict[str, str] = {}
        for col, value in row.items():
            b, suffix = _split(col)
            if b != base:
                continue
            text = _text(value)
            if suffix is None:
                plain = text
            elif col in self.languages.get(sheet, {}):
                code = self.languages[sheet][col]
                if code in by_lang and by_lang[code] != text:
                    self.error(sheet, number, f"two '{base}' columns for language '{code}'", base)
                by_lang[code] = text
        if not by_lang:
            return plain
        if plain is not None:
            if "id" in by_lang and by_lang["id"] != plain:
                self.error(
                    sheet,
                    number,
                    f"'{base}' and '{base}::...(id)' both hold an Indonesian text; keep one",
                    base,
                )
            by_lang.setdefault("id", plain)
        return by_lang

    # -- values -------------------------------------------------------------

    def flag(self, sheet: str, number: int, column: str, value: Any) -> bool | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = _text(value).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.error(
            sheet,
            number,
            f"'{column}' is yes or no, not {value!r}"
            + (
                " (Tapak has no conditional requirement; use relevant)"
                if column == "required"
                else ""
            ),
            column,
        )
        return None

    def integer(self, sheet: str, number: int, column: str, value: Any) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = _text(value)
        if text is not None and _INT_RE.match(text):
            return int(text)
        self.error(sheet, number, f"'{column}' must be a whole number, not {value!r}", column)
        return None

    def number(self, sheet: str, number: int, column: str, value: Any) -> int | float | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        text = _text(value) or ""
        try:
            return int(text) if _INT_RE.match(text) else float(text)
        except ValueError:
            self.error(sheet, number, f"'{column}' must be a number, not {value!r}", column)
            return None


# ---------------------------------------------------------------------------
# survey/choices/settings -> definition
# ---------------------------------------------------------------------------


def _normal_type(text: str) -> list[str]:
    words = text.strip().split()
    if (
        len(words) >= 2
        and words[0].lower() in ("begin", "end")
        and words[1].lower()
        in (
            "group",
            "repeat",
        )
    ):
        words = [f"{words[0].lower()}_{words[1].lower()}"] + words[2:]
    if words:
        words[0] = words[0].lower().replace(" ", "_")
    return words


def _choices(r: _Reader) -> tuple[dict, dict[str, str]]:
    """The form's choice lists and each list's kind ('int'/'str'); the yes/no list left out."""
    if CHOICES not in r.sheets:
        return {}, {}
    header, rows = r.sheets[CHOICES]
    r.columns(CHOICES, header, {"list_name", "name", "label"}, {"type"})
    lists: dict[str, list[tuple[int, dict]]] = {}
    first_row: dict[str, int] = {}
    text_lists: set[str] = set()
    for number, row in rows:
        list_name = _text(row.get("list_name"))
        name = _text(row.get("name"))
        if list_name is None:
            r.error(CHOICES, number, "a choice needs its 'list_name'")
            continue
        if name is None:
            r.error(CHOICES, number, f"a choice of list '{list_name}' needs its 'name' (code)")
            continue
        label = r.label(CHOICES, number, row, "label")
        if label is None:
            r.error(CHOICES, number, f"choice '{name}' of list '{list_name}' has no label")
            continue
        first_row.setdefault(list_name, number)
        if _text(row.get("tapak::type")) == "text":
            text_lists.add(list_name)
        elif row.get("tapak::type") is not None:
            r.error(CHOICES, number, "tapak::type on a choice is 'text' (codes kept as text)")
        lists.setdefault(list_name, []).append((number, {"name": name, "label": label}))
    out: dict[str, list] = {}
    kinds: dict[str, str] = {}
    for list_name, options in lists.items():
        if list_name == BOOLEAN_LIST:
            codes = sorted(o["name"] for _, o in options)
            if codes != ["no", "yes"]:
                r.error(
                    CHOICES,
                    first_row[list_name],
                    f"the list '{BOOLEAN_LIST}' is Tapak's yes/no list: its codes are 'yes' "
                    f"and 'no' only, not {', '.join(codes)}",
                )
            continue
        ints = list_name not in text_lists and all(_INT_RE.match(o["name"]) for _, o in options)
        kinds[list_name] = "int" if ints else "str"
        r.where[f"choices.{list_name}"] = (CHOICES, first_row[list_name])
        out[list_name] = []
        for i, (number, o) in enumerate(options):
            value: Any = int(o["name"]) if ints else o["name"]
            r.where[f"choices.{list_name}[{i}]"] = (CHOICES, number)
            out[list_name].append({"value": value, "label": o["label"]})
    return out, kinds


def _settings(r: _Reader, definition: dict) -> None:
    if SETTINGS not in r.sheets or not r.sheets[SETTINGS][1]:
        r.error(SETTINGS, None, "the workbook needs a 'settings' sheet with form_id and version")
        return
    header, rows = r.sheets[SETTINGS]
    r.columns(
        SETTINGS,
        header,
        {"form_id", "version", "form_title", "default_language"},
        {"title", "description"},
    )
    number, row = rows[0]
    for extra in rows[1:]:
        r.error(SETTINGS, extra[0], "the settings sheet has one row of values")
    form_id = _text(row.get("form_id"))
    if form_id is None:
        r.error(SETTINGS, number, "'form_id' is required (lowercase snake_case)")
    else:
        definition["form_id"] = form_id
    if row.get("version") is None:
        r.error(SETTINGS, number, "'version' is required (a positive whole number)")
    else:
        version = r.integer(SETTINGS, number, "version", row["version"])
        if version is not None:
            definition["version"] = version
    title = r.label(SETTINGS, number, row, "form_title")
    others = r.label(SETTINGS, number, row, "tapak::title")
    if isinstance(others, dict):
        # form_title (XLSForm's, pyxform takes it plain) with the other languages beside it
        if isinstance(title, str):
            title = {"id": title} if "id" not in others else title
        if isinstance(title, dict):
            for code, text in title.items():
                if others.setdefault(code, text) != text:
                    r.error(SETTINGS, number, f"two titles for language '{code}'", "title")
        title = others
    if title is None:
        r.error(SETTINGS, number, "'form_title' is required")
    else:
        definition["title"] = title
    description = r.label(SETTINGS, number, row, "tapak::description")
    if description is not None:
        definition["description"] = description
    for key in ("form_id", "version", "title", "description"):
        r.where[key] = (SETTINGS, number)
    for col in row:
        base, _ = _split(col)
        if base not in (
            "form_id",
            "version",
            "form_title",
            "default_language",
            "tapak::title",
            "tapak::description",
        ):
            r.warn(SETTINGS, number, f"'{col}' is not kept (Tapak sets it itself or has no use)")


def _example(r: _Reader, number: int, f: dict, value: Any, kinds: dict) -> Any:
    ftype = f["type"]
    col = "tapak::example"
    if ftype == "integer":
        return r.integer(SURVEY, number, col, value)
    if ftype == "decimal":
        return r.number(SURVEY, number, col, value)
    if ftype == "boolean":
        return r.flag(SURVEY, number, col, value)
    if ftype == "select_one":
        if kinds.get(f.get("choices")) == "int":
            return r.integer(SURVEY, number, col, value)
        return _text(value)
    if ftype == "select_multiple":
        codes = _text(value).split()
        if kinds.get(f.get("choices")) == "int":
            return [int(c) if _INT_RE.match(c) else c for c in codes]
        return codes
    if ftype == "geopoint":
        text = _text(value)
        try:
            if text.startswith("{"):
                return json.loads(text)
            parts = [float(x) for x in text.split()]
            keys = ("lat", "lon", "altitude_m", "accuracy_m")
            return {k: (int(v) if v.is_integer() else v) for k, v in zip(keys, parts, strict=False)}
        except ValueError:
            r.error(SURVEY, number, f"{col}: a geopoint is 'lat lon [altitude accuracy]'", col)
            return None
    return _text(value)


def _extract_pattern(r: _Reader, number: int, xpath: str) -> tuple[str | None, str | None]:
    """Split ``regex(., '^...$')`` conjuncts off a constraint: (the rest, the pattern)."""
    parts = _conjuncts(xpath)
    rest, pattern = [], None
    for part in parts:
        m = re.fullmatch(r"\s*regex\(\s*\.\s*,\s*(?:'([^']*)'|\"([^\"]*)\")\s*\)\s*", part)
        if m is None:
            rest.append(part)
            continue
        rx = m.group(1) if m.group(1) is not None else m.group(2)
        inner = re.fullmatch(r"\^\(\?:(.*)\)\$", rx) or re.fullmatch(r"\^([^|]*)\$", rx)
        if inner is None:
            r.error(
                SURVEY,
                number,
                f"constraint: regex {rx!r} must match the whole answer, anchored as '^...$' "
                "(Tapak's pattern is a whole-answer match)",
                "constraint",
            )
            continue
        pattern = inner.group(1)
    if len(rest) == len(parts):
        return xpath, None
    return (" and ".join(rest) if rest else None), pattern


def _conjuncts(xpath: str) -> list[str]:
    """The parts of a top-level ``a and b and c`` (parentheses and quotes respected)."""
    text = xpath.strip()
    while text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    parts, depth, start, i, quote = [], 0, 0, 0, None
    while i < len(text):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and re.match(r"\sand\s", text[i : i + 5]):
            parts.append(text[start:i])
            start = i + 5
            i += 4
        i += 1
    parts.append(text[start:])
    out = []
    for p in parts:
        p = p.strip()
        if p.startswith("(") and _closing(p, 0) == len(p) - 1:
            p = p[1:-1].strip()
        out.append(p)
    return out


def _closing(text: str, at: int) -> int:
    depth, quote = 0, None
    for i in range(at, len(text)):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _survey(r: _Reader, choices: dict, kinds: dict) -> list:
    if SURVEY not in r.sheets:
        r.error(SURVEY, None, "the workbook has no 'survey' sheet")
        return []
    header, rows = r.sheets[SURVEY]
    known = {"type", "name", "relevant", "constraint", "required", *(_LABELLED)}
    r.columns(SURVEY, header, known | set(_REFUSED_COLUMNS), set(_TAPAK_SURVEY))
    for col in sorted(r._dropped):
        used = [n for n, row in rows if col in row]
        if used:
            r.warn(SURVEY, used[0], f"column '{col}' is not kept (rows {_rows(used)})")
    root: list = []
    # stack of (fields list, container field, kind, row, path)
    stack: list[tuple[list, dict | None, str | None, int | None, str]] = [
        (root, None, None, None, "fields")
    ]
    for number, row in rows:
        type_text = _text(row.get("type"))
        if type_text is None:
            r.error(SURVEY, number, "the row has no type")
            continue
        words = _normal_type(type_text)
        kind = words[0]
        if kind in _ENDS:
            want = _ENDS[kind]
            if len(stack) == 1:
                r.error(SURVEY, number, f"'{type_text}' closes no begin_{want}", "type")
                continue
            _, container, open_kind, open_row, _ = stack[-1]
            if open_kind != want:
                r.error(
                    SURVEY,
                    number,
                    f"'{type_text}' cannot close begin_{open_kind} '{container['name']}' of row "
                    f"{open_row}; close the {open_kind} first",
                    "type",
                )
                continue
            stack.pop()
            continue
        if kind in _SKIPPED_META:
            r.warn(SURVEY, number, f"'{kind}' is not kept: Tapak records it with every visit")
            continue
        for col, why in _REFUSED_COLUMNS.items():
            if col in row:
                r.error(SURVEY, number, f"column '{col}' cannot be translated: {why}", col)
        name = _text(row.get("name"))
        if name is None:
            r.error(SURVEY, number, f"a {kind} row needs a name", "name")
            continue
        fields, _, _, _, base = stack[-1]
        path = f"{base}[{len(fields)}]"
        tapak_type = _text(row.get("tapak::type"))
        f: dict[str, Any] = {"name": name}
        if kind in _CONTAINERS:
            f["type"] = _CONTAINERS[kind]
            f["fields"] = []
        elif kind in ("select_one", "select_multiple"):
            if len(words) != 2:
                r.error(
                    SURVEY,
                    number,
                    f"'{type_text}': write '{kind} <list name>' (or_other and from-file lists "
                    "cannot be translated)",
                    "type",
                )
                continue
            list_name = words[1]
            if kind == "select_one" and (list_name == BOOLEAN_LIST or tapak_type == "boolean"):
                if list_name != BOOLEAN_LIST:
                    codes = sorted(str(o["value"]) for o in choices.get(list_name, []))
                    if codes != ["no", "yes"]:
                        r.error(
                            SURVEY,
                            number,
                            f"tapak::type boolean needs a list of codes 'yes' and 'no'; "
                            f"'{list_name}' has {', '.join(codes) or 'no choices'}",
                            "type",
                        )
                f["type"] = "boolean"
            elif list_name not in choices:
                r.error(
                    SURVEY,
                    number,
                    f"choice list '{list_name}' does not exist on the choices sheet",
                    "choices",
                )
                continue
            else:
                f["type"] = kind
                f["choices"] = list_name
        elif kind in _TYPE_ALIASES and len(words) == 1:
            f["type"] = _TYPE_ALIASES[kind]
        else:
            r.error(
                SURVEY,
                number,
                f"unknown or unsupported type '{type_text}' (Tapak takes: text, integer, "
                "decimal, date, datetime, geopoint, image, note, select_one <list>, "
                "select_multiple <list>, begin_group/end_group, begin_repeat/end_repeat)",
                "type",
            )
            continue
        if tapak_type is not None and not (tapak_type == "boolean" and f["type"] == "boolean"):
            if tapak_type != f["type"]:
                r.error(
                    SURVEY,
                    number,
                    f"tapak::type '{tapak_type}' does not fit type '{type_text}' "
                    "(only 'boolean' on a yes/no select_one)",
                    "type",
                )
        r.where[path] = (SURVEY, number)
        label = r.label(SURVEY, number, row, "label")
        if label is not None:
            f["label"] = label
        hint = r.label(SURVEY, number, row, "hint")
        if hint is not None:
            f["hint"] = hint
        required = r.flag(SURVEY, number, "required", row.get("required"))
        if required is not None:
            f["required"] = required
        if r.label(SURVEY, number, row, "required_message") is not None:
            r.warn(SURVEY, number, "required_message is not kept: Tapak says 'Wajib diisi.'")
        _tapak_columns(r, number, row, f, kinds)
        for key in ("relevant", "constraint"):
            xpath = _text(row.get(key))
            json_rule = _text(row.get(f"tapak::{key}"))
            if key == "constraint" and xpath is not None and "regex(" in xpath:
                xpath, pattern = _extract_pattern(r, number, xpath)
                if pattern is not None:
                    if "pattern" in f and f["pattern"] != pattern:
                        r.error(SURVEY, number, "regex() and tapak::pattern disagree", "pattern")
                    f["pattern"] = pattern
            if xpath is not None or json_rule is not None:
                r.rules.append((f, path, number, key, xpath, json_rule))
        message = r.label(SURVEY, number, row, "constraint_message")
        if message is not None:
            if any(rule[0] is f and rule[3] == "constraint" for rule in r.rules):
                f["constraint_message"] = message
            else:
                r.warn(SURVEY, number, "constraint_message is not kept: no constraint rule left")
        fields.append(f)
        if kind in _CONTAINERS:
            stack.append((f["fields"], f, f["type"], number, f"{path}.fields"))
    for _, container, open_kind, open_row, _ in stack[1:]:
        r.error(
            SURVEY,
            open_row,
            f"begin_{open_kind} '{container['name']}' is never closed (no end_{open_kind})",
            "type",
        )
    return root


def _rows(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:5]) + (" ..." if len(numbers) > 5 else "")


def _tapak_columns(r: _Reader, number: int, row: dict, f: dict, kinds: dict) -> None:
    ftype = f["type"]
    for key in ("min", "max"):
        value = row.get(f"tapak::{key}")
        if value is None:
            continue
        col = f"tapak::{key}"
        if ftype == "integer":
            v = r.integer(SURVEY, number, col, value)
        elif ftype == "decimal":
            v = r.number(SURVEY, number, col, value)
        else:
            v = _text(value)
        if v is not None:
            f[key] = v
    for key in ("min_length", "max_length", "min_count", "max_count"):
        value = row.get(f"tapak::{key}")
        if value is not None:
            v = r.integer(SURVEY, number, f"tapak::{key}", value)
            if v is not None:
                f[key] = v
    for key in ("pattern", "age_helper", "prefill", "verifies"):
        value = row.get(f"tapak::{key}")
        if value is not None:
            f[key] = _text(value)
    if row.get("tapak::example") is not None:
        v = _example(r, number, f, row["tapak::example"], kinds)
        if v is not None:
            f["example"] = v


def _translate_rules(r: _Reader, definition: dict) -> None:
    try:
        scope = FormScope(definition)
    except (KeyError, TypeError, XPathError) as exc:  # a definition too broken to resolve names
        r.error(SURVEY, None, f"the rules cannot be read before the errors above are fixed: {exc}")
        return
    for f, path, number, key, xpath, json_rule in r.rules:
        at = _at_path(definition, path)
        constraint = key == "constraint"
        kw = {"value": "."} if constraint and f["type"] in ("group", "repeat") else {}
        rule: Any = None
        if xpath is not None:
            try:
                rule = to_jsonlogic(xpath, scope, at, constraint=constraint)
            except XPathError as exc:
                r.error(SURVEY, number, f"{key}: {_reason(exc)}", key)
                continue
        if json_rule is not None:
            try:
                given = json.loads(json_rule)
                written = to_xpath(given, scope, at, constraint=constraint, **kw)
            except (ValueError, XPathError) as exc:
                r.error(SURVEY, number, f"tapak::{key}: {_reason(exc)}", key)
                continue
            if rule is None or to_xpath(rule, scope, at, constraint=constraint, **kw) == written:
                rule = given
            else:
                r.warn(
                    SURVEY,
                    number,
                    f"tapak::{key} no longer matches the {key} column and is ignored "
                    f"(the XPath was edited): delete it",
                )
        f[key] = rule


def _reason(exc: Exception) -> str:
    text = str(exc).replace("cannot translate the XPath", "cannot translate")
    text = re.sub(r"\$\{(\w+)\} names 0 questions", r"no question is named '\1'", text)
    return re.sub(
        r"\$\{(\w+)\} names (\d+) questions", r"\2 questions are named '\1' (use a path)", text
    )


def _at_path(definition: dict, path: str) -> tuple[str, ...]:
    """The answer path (names) of ``fields[3].fields[1]``."""
    names = []
    fields = definition["fields"]
    for index in re.findall(r"\[(\d+)\]", path):
        f = fields[int(index)]
        names.append(f["name"])
        fields = f.get("fields", [])
    return tuple(names)


def _locate(r: _Reader, error: dict) -> tuple[str, int | None, str]:
    """(sheet, row, the rest of the path: the key) of a check_definition problem."""
    full = path = error["path"]
    while path:
        if path in r.where:
            return (*r.where[path], full[len(path) :].lstrip("."))
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return SURVEY, None, full


def definition_from_xlsform(source: Any) -> tuple[dict, list[dict]]:
    """``(definition, warnings)`` from an XLSForm (a path, a file object or the bytes).

    Raises ``XLSFormError`` with every problem found (sheet, row, reason). Warnings
    (``{"sheet", "row", "message"}``) name what was read but not kept (cosmetic columns,
    ``required_message``, metadata types).
    """
    try:
        sheets = _read_sheets(source)
    except Exception as exc:  # openpyxl raises many kinds for a file that is no workbook
        raise XLSFormError(
            [{"sheet": "(file)", "row": None, "message": f"not an .xlsx workbook: {exc}"}]
        ) from exc
    r = _Reader(sheets)
    definition: dict[str, Any] = {}
    _settings(r, definition)
    choices, kinds = _choices(r)
    fields = _survey(r, choices, kinds)
    if choices:
        definition["choices"] = choices
    definition["fields"] = fields
    _translate_rules(r, definition)
    for problem in check_definition(definition):
        sheet, row, rest = _locate(r, problem)
        if sheet == SETTINGS:
            rest = problem["path"]  # title.id, form_id...
        head = rest.split(".")[0]
        key = "choices" if problem["code"] == "choices_missing" else head
        if (sheet, row, key) in r.row_errors or (sheet, row, "type") in r.row_errors:
            continue  # already said, in the workbook's words
        if problem["path"] == "fields" and any(e[0] == SURVEY for e in r.row_errors):
            continue  # no question left because every row was refused
        message = problem["message"]
        if rest.endswith(".id") and problem["code"] == "required":
            column = rest[:-3]
            message = (
                f"Tapak needs the Indonesian text: a plain '{column}' column or "
                f"'{column}::Bahasa Indonesia (id)'"
            )
            if column == "title":
                message = (
                    "Tapak needs the Indonesian title: a plain 'form_title' column (other "
                    "languages in 'tapak::title::English (en)')"
                )
            rest = ""
        r.error(
            sheet, row, f"{rest}: {message}" if rest and f"'{head}'" not in message else message
        )
    if r.errors:
        r.errors.sort(key=lambda e: (e["sheet"] != SETTINGS, e["sheet"], e["row"] or 0))
        raise XLSFormError(r.errors)
    ordered = {
        k: definition[k]
        for k in ("form_id", "version", "title", "description", "choices", "fields")
        if k in definition
    }
    return ordered, r.warnings


def load_xlsform(path: str | Path) -> tuple[dict, list[dict]]:
    """``definition_from_xlsform`` of a file."""
    with open(path, "rb") as fh:
        return definition_from_xlsform(fh.read())


def count_questions(fields: list) -> dict[str, int]:
    """``{"questions", "notes", "groups", "repeats"}`` at every depth (questions take answers)."""
    out = {"questions": 0, "notes": 0, "groups": 0, "repeats": 0}
    for f in fields:
        t = f["type"]
        if t in ("group", "repeat"):
            out[t + "s"] += 1
            for k, v in count_questions(f["fields"]).items():
                out[k] += v
        elif t == "note":
            out["notes"] += 1
        else:
            out["questions"] += 1
    return out


# ---------------------------------------------------------------------------
# definition -> workbook
# ---------------------------------------------------------------------------


def _lang_column(base: str, code: str) -> str:
    return f"{base}::{LANGUAGE_NAMES.get(code, code)} ({code})"


def _put_label(row: dict, base: str, label: Any) -> None:
    if label is None:
        return
    if isinstance(label, str):
        row[base] = label
        return
    for code, text in label.items():
        row[_lang_column(base, code)] = text


def _example_cell(f: dict, value: Any) -> Any:
    t = f["type"]
    if t == "boolean":
        return "yes" if value else "no"
    if t == "select_multiple":
        return " ".join(str(v) for v in value)
    if t == "geopoint":
        return json.dumps(value)
    return value


class _Writer:
    def __init__(self, definition: dict):
        self.d = definition
        self.scope = FormScope(definition)
        self.rows: list[dict] = []

    def fields(self, fields: list, prefix: tuple) -> None:
        for f in fields:
            self.field(f, prefix + (f["name"],))

    def rule(self, row: dict, f: dict, at: tuple, key: str) -> None:
        rule = f[key]
        constraint = key == "constraint"
        kw = {"value": "."} if constraint and f["type"] in ("group", "repeat") else {}
        xpath = to_xpath(rule, self.scope, at, constraint=constraint, **kw)
        row[key] = xpath
        try:
            back = to_jsonlogic(xpath, self.scope, at, constraint=constraint)
        except XPathError:
            back = None
        if back != rule:
            # an equivalent rule would come back: keep the JsonLogic itself beside the XPath
            row[f"tapak::{key}"] = json.dumps(rule, ensure_ascii=False, separators=(", ", ": "))

    def field(self, f: dict, at: tuple) -> None:
        t = f["type"]
        row: dict[str, Any] = {"name": f["name"]}
        if t in ("group", "repeat"):
            row["type"] = f"begin_{t}"
        elif t == "boolean":
            row["type"] = f"select_one {BOOLEAN_LIST}"
        elif t in ("select_one", "select_multiple"):
            row["type"] = f"{t} {f['choices']}"
        elif t == "photo":
            row["type"] = "image"
        else:
            row["type"] = t
        _put_label(row, "label", f.get("label"))
        _put_label(row, "hint", f.get("hint"))
        if "relevant" in f:
            self.rule(row, f, at, "relevant")
        if "constraint" in f:
            self.rule(row, f, at, "constraint")
        _put_label(row, "constraint_message", f.get("constraint_message"))
        if "required" in f:
            row["required"] = "yes" if f["required"] else "no"
        for key in _TAPAK_SURVEY[3:]:
            if key in f:
                value = f[key]
                row[f"tapak::{key}"] = _example_cell(f, value) if key == "example" else value
        self.rows.append(row)
        if t in ("group", "repeat"):
            self.fields(f["fields"], at)
            self.rows.append({"type": f"end_{t}"})

    @staticmethod
    def _uses_boolean(fields: list) -> bool:
        return any(
            f["type"] == "boolean"
            or (f["type"] in ("group", "repeat") and _Writer._uses_boolean(f["fields"]))
            for f in fields
        )

    def choices(self) -> list[dict]:
        rows: list[dict] = []
        if self._uses_boolean(self.d["fields"]):
            for code, label in (
                ("yes", {"id": "Ya", "en": "Yes"}),
                ("no", {"id": "Tidak", "en": "No"}),
            ):
                row = {"list_name": BOOLEAN_LIST, "name": code}
                _put_label(row, "label", label)
                rows.append(row)
        for list_name, options in (self.d.get("choices") or {}).items():
            # text codes that all look like whole numbers would come back as integers
            as_text = all(type(o["value"]) is str and _INT_RE.match(o["value"]) for o in options)
            for o in options:
                row = {"list_name": list_name, "name": str(o["value"])}
                _put_label(row, "label", o["label"])
                if as_text:
                    row["tapak::type"] = "text"
                rows.append(row)
        return rows

    def settings(self) -> list[dict]:
        row: dict[str, Any] = {"form_id": self.d["form_id"], "version": self.d["version"]}
        title = self.d["title"]
        if isinstance(title, dict):
            # pyxform takes form_title plain only: the Indonesian, other languages beside it
            if len(title) > 1 and "id" in title:
                row["form_title"] = title["id"]
                title = {k: v for k, v in title.items() if k != "id"}
            _put_label(row, "tapak::title", title)
        else:
            row["form_title"] = title
        _put_label(row, "tapak::description", self.d.get("description"))
        if any("::" in k for r in self.rows for k in r if not k.startswith("tapak::")):
            row["default_language"] = _lang_name("id")
        return [row]


def _lang_name(code: str) -> str:
    return f"{LANGUAGE_NAMES.get(code, code)} ({code})"


_ORDER = (
    "type",
    "list_name",
    "name",
    "form_id",
    "version",
    "form_title",
    "label",
    "hint",
    "relevant",
    "constraint",
    "constraint_message",
    "required",
    "default_language",
    "tapak::title",
    "tapak::description",
    *(f"tapak::{k}" for k in _TAPAK_SURVEY),
)


def _header(rows: list[dict]) -> list[str]:
    """Columns in XLSForm's usual order (Tapak's columns last), languages as first used."""
    seen: list[str] = []
    for r in rows:
        for k in r:
            if k not in seen:
                seen.append(k)

    def rank(column: str) -> tuple[int, int]:
        base, _ = _split(column)
        return (_ORDER.index(base) if base in _ORDER else len(_ORDER), seen.index(column))

    return sorted(seen, key=rank)


def xlsform_from_definition(definition: dict):
    """An openpyxl ``Workbook`` (survey, choices, settings) of a definition.

    Raises ``ValueError`` for a definition that uses the reserved list name ``tapak_ya_tidak``
    and ``forms.xpath.XPathError`` for a rule without an XPath translation.
    """
    from openpyxl import Workbook

    if BOOLEAN_LIST in (definition.get("choices") or {}):
        raise ValueError(f"the choice list name '{BOOLEAN_LIST}' is reserved for booleans")
    w = _Writer(definition)
    w.fields(definition["fields"], ())
    sheets = {SURVEY: w.rows, CHOICES: w.choices(), SETTINGS: w.settings()}
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        header = _header(rows)
        ws.append(header)
        for i, r in enumerate(rows, start=2):
            for j, c in enumerate(header, start=1):
                value = r.get(c)
                if value is None:
                    continue
                cell = ws.cell(row=i, column=j, value=value)
                if isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"  # text, never a formula
    return book


def save_xlsform(definition: dict, path: str | Path | io.BytesIO) -> None:
    """Write ``xlsform_from_definition(definition)`` to ``path`` (or a binary buffer)."""
    xlsform_from_definition(definition).save(path)
