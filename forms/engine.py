"""Loading a form and validating visits against it.

A definition is compiled once into a tree of ``_Node`` objects whose type checks
and JsonLogic rules are ready-made closures, because validation sits on the push
hot path (thousands of visits a second). See docs/forms.md for the conventions
phones must reproduce: the rule data context, age helpers, dropping of answers
to questions that are not relevant, and the error codes.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from forms.definition import check_definition, content_hash
from forms.jsonlogic import JsonLogicError, compile_rule, truthy
from forms.messages import message, number, show

_MISSING: Any = object()
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})\Z"
)
_INDEX_RE = re.compile(r"\[\d+\]")
_CONTEXT_KEYS = ("_visit", "_item", "_parent", "value")


class FormDefinitionError(ValueError):
    """The definition has problems; ``errors`` lists every one with its path."""

    def __init__(self, errors: list[dict]):
        first = errors[0] if errors else {"path": "", "message": "invalid form definition"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first['path']}: {first['message']}{more}")
        self.errors = errors


class ValidationResult(NamedTuple):
    """``(answers, errors)``: the cleaned answers and every error found (empty when valid)."""

    answers: dict
    errors: list[dict]

    @property
    def ok(self) -> bool:
        return not self.errors


def label_text(label: Any, lang: str = "id") -> str:
    """The label in ``lang`` (Indonesian by default), falling back to Indonesian."""
    if type(label) is dict:
        return str(label.get(lang) or label.get("id") or "")
    return "" if label is None else str(label)


# ---------------------------------------------------------------------------
# Type checks: value -> None when fine, else (code, message key, message parameters); the
# messages come from forms/messages_id.json, the table the field app shows too.
# ---------------------------------------------------------------------------


def _make_text_check(field: dict):
    lo = field.get("min_length")
    hi = field.get("max_length")
    pattern = field.get("pattern")
    rx = re.compile(pattern, re.ASCII) if pattern else None

    def check(v: Any):
        if type(v) is not str:
            return "type", "type.text", {}
        n = len(v)
        if lo is not None and n < lo:
            return "min_length", "min_length", {"min_length": number(lo)}
        if hi is not None and n > hi:
            return "max_length", "max_length", {"max_length": number(hi)}
        if rx is not None and rx.fullmatch(v) is None:
            return "pattern", "pattern", {"pattern": pattern}
        return None

    return check


def _range_check(lo: Any, hi: Any):
    if lo is None and hi is None:
        return None

    def rng(v: Any):
        if lo is not None and v < lo:
            return "min", "min", {"min": number(lo)}
        if hi is not None and v > hi:
            return "max", "max", {"max": number(hi)}
        return None

    return rng


def _make_integer_check(field: dict):
    rng = _range_check(field.get("min"), field.get("max"))

    def check(v: Any):
        t = type(v)
        if t is not int and not (t is float and v.is_integer()):
            return "type", "type.integer", {}
        return rng(v) if rng is not None else None

    return check


def _make_decimal_check(field: dict):
    rng = _range_check(field.get("min"), field.get("max"))

    def check(v: Any):
        t = type(v)
        if t is not int and (t is not float or not math.isfinite(v)):
            return "type", "type.decimal", {}
        return rng(v) if rng is not None else None

    return check


def _make_boolean_check(field: dict):
    def check(v: Any):
        if type(v) is not bool:
            return "type", "type.boolean", {}
        return None

    return check


def _valid_date(v: str) -> bool:
    if not _DATE_RE.match(v):
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _make_date_check(field: dict):
    lo = field.get("min")
    hi = field.get("max")

    def check(v: Any):
        if type(v) is not str or not _valid_date(v):
            return "type", "type.date", {}
        if lo is not None and v < lo:
            return "min", "min.date", {"min": lo}
        if hi is not None and v > hi:
            return "max", "max.date", {"max": hi}
        return None

    return check


def valid_datetime(v: Any) -> bool:
    """ISO 8601 with an offset, like ``2026-01-05T09:12:00+07:00``."""
    if type(v) is not str or not _DATETIME_RE.match(v):
        return False
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _make_datetime_check(field: dict):
    def check(v: Any):
        if not valid_datetime(v):
            return "type", "type.datetime", {}
        return None

    return check


def _choice_sets(options: list) -> tuple[frozenset, frozenset]:
    ints = frozenset(o["value"] for o in options if type(o["value"]) is int)
    strs = frozenset(o["value"] for o in options if type(o["value"]) is str)
    return ints, strs


def _make_select_one_check(field: dict, choices: dict):
    ints, strs = _choice_sets(choices[field["choices"]])
    list_name = field["choices"]

    def check(v: Any):
        t = type(v)
        if (t is int and v in ints) or (t is str and v in strs):
            return None
        return "choice", "choice", {"value": show(v), "list": list_name}

    return check


def _make_select_multiple_check(field: dict, choices: dict):
    ints, strs = _choice_sets(choices[field["choices"]])
    list_name = field["choices"]
    lo = field.get("min_count")
    hi = field.get("max_count")

    def check(v: Any):
        if type(v) is not list:
            return "type", "type.select_multiple", {}
        for x in v:
            t = type(x)
            if not ((t is int and x in ints) or (t is str and x in strs)):
                return "choice", "choice", {"value": show(x), "list": list_name}
        if len(set(v)) != len(v):
            return "duplicate", "duplicate", {}
        if lo is not None and len(v) < lo:
            return "min_count", "min_count", {"min_count": number(lo)}
        if hi is not None and len(v) > hi:
            return "max_count", "max_count", {"max_count": number(hi)}
        return None

    return check


_GEO_KEYS = frozenset({"lat", "lon", "accuracy_m", "altitude_m"})


def _is_finite_number(v: Any) -> bool:
    t = type(v)
    return t is int or (t is float and math.isfinite(v))


def _make_geopoint_check(field: dict):
    def check(v: Any):
        if type(v) is not dict or not _is_finite_number(v.get("lat")):
            return "type", "type.geopoint", {}
        if not _is_finite_number(v.get("lon")) or not v.keys() <= _GEO_KEYS:
            return "type", "type.geopoint", {}
        if not -90 <= v["lat"] <= 90 or not -180 <= v["lon"] <= 180:
            return "type", "type.geopoint_range", {}
        acc = v.get("accuracy_m")
        if acc is not None and (not _is_finite_number(acc) or acc < 0):
            return "type", "type.geopoint_accuracy", {}
        alt = v.get("altitude_m")
        if alt is not None and not _is_finite_number(alt):
            return "type", "type.geopoint_altitude", {}
        return None

    return check


_CHECK_MAKERS = {
    "text": _make_text_check,
    "integer": _make_integer_check,
    "decimal": _make_decimal_check,
    "boolean": _make_boolean_check,
    "date": _make_date_check,
    "datetime": _make_datetime_check,
    "geopoint": _make_geopoint_check,
}


def _make_check(field: dict, choices: dict):
    ftype = field["type"]
    if ftype == "select_one":
        return _make_select_one_check(field, choices)
    if ftype == "select_multiple":
        return _make_select_multiple_check(field, choices)
    maker = _CHECK_MAKERS.get(ftype)
    return maker(field) if maker is not None else None


def age_in_years(birth: Any, on: Any) -> int | None:
    """Whole years from ``birth`` to ``on`` (both YYYY-MM-DD); None when either is unusable.

    The phone computes the same: year difference, minus one before the birthday.
    """
    if type(birth) is not str or type(on) is not str or not _valid_date(birth):
        return None
    if not _valid_date(on):
        return None
    by, bm, bd = int(birth[:4]), int(birth[5:7]), int(birth[8:10])
    vy, vm, vd = int(on[:4]), int(on[5:7]), int(on[8:10])
    return vy - by - (1 if (vm, vd) < (bm, bd) else 0)


# ---------------------------------------------------------------------------
# Compiled form
# ---------------------------------------------------------------------------

_VALUE, _GROUP, _REPEAT, _PHOTO, _NOTE = range(5)
_KIND = {"group": _GROUP, "repeat": _REPEAT, "photo": _PHOTO, "note": _NOTE}


class _Node:
    __slots__ = (
        "name",
        "type",
        "kind",
        "label",
        "required",
        "relevant",
        "constraint",
        "constraint_message",
        "check",
        "children",
        "names",
        "min_count",
        "max_count",
        "helpers",
        "field",
        "photo_key",
    )

    def __init__(self, field: dict, choices: dict, photo_prefix: str):
        self.field = field
        self.name = field["name"]
        self.type = field["type"]
        self.kind = _KIND.get(self.type, _VALUE)
        self.label = label_text(field.get("label")) or self.name
        self.required = bool(field.get("required", False))
        self.relevant = compile_rule(field["relevant"]) if "relevant" in field else None
        self.constraint = compile_rule(field["constraint"]) if "constraint" in field else None
        msg = label_text(field.get("constraint_message"))
        self.constraint_message = msg or message("constraint.default")
        self.check = _make_check(field, choices)
        self.min_count = field.get("min_count")
        self.max_count = field.get("max_count")
        self.photo_key = photo_prefix + self.name
        self.children: tuple[_Node, ...] = ()
        self.names: frozenset[str] = frozenset()
        self.helpers: tuple[tuple[str, str], ...] = ()
        if self.kind == _GROUP:
            self._set_children(field["fields"], choices, photo_prefix + self.name + ".")
        elif self.kind == _REPEAT:
            self._set_children(field["fields"], choices, photo_prefix + self.name + "[].")

    def _set_children(self, fields: list, choices: dict, photo_prefix: str) -> None:
        self.children = tuple(_Node(f, choices, photo_prefix) for f in fields)
        self.names = frozenset(c.name for c in self.children)
        self.helpers = _helpers_of(fields)


def _helpers_of(fields: list) -> tuple[tuple[str, str], ...]:
    return tuple(
        (f["age_helper"], f["name"]) for f in fields if f["type"] == "date" and "age_helper" in f
    )


class Form:
    """A checked, compiled form definition, ready to validate visits."""

    def __init__(self, definition: dict):
        self.definition = definition
        self.form_id: str = definition["form_id"]
        self.version: int = definition["version"]
        self.title: str = label_text(definition.get("title"))
        self.content_hash: str = content_hash(definition)
        self.choices: dict = definition.get("choices") or {}
        self.nodes = tuple(_Node(f, self.choices, "") for f in definition["fields"])
        self.names = frozenset(n.name for n in self.nodes)
        self.helpers = _helpers_of(definition["fields"])
        self.photo_keys = frozenset(_photo_keys(self.nodes))

    @property
    def hash(self) -> str:
        return self.content_hash

    def __repr__(self) -> str:
        return f"<Form {self.form_id} v{self.version} {self.content_hash[:12]}>"

    def validate(self, visit: Any) -> ValidationResult:
        return validate_visit(self, visit)


def _photo_keys(nodes: tuple[_Node, ...]):
    for n in nodes:
        if n.kind == _PHOTO:
            yield n.photo_key
        elif n.children:
            yield from _photo_keys(n.children)


def load_form(source: str | Path | dict) -> Form:
    """A Form from a definition dict or a JSON file path; FormDefinitionError lists problems."""
    if isinstance(source, dict):
        definition = source
    else:
        definition = json.loads(Path(source).read_text(encoding="utf-8"))
    errors = check_definition(definition)
    if errors:
        raise FormDefinitionError(errors)
    return Form(definition)


def example_problems(definition: dict) -> list[dict]:
    """Examples that do not pass their own field's type check (after the rest is sound)."""
    problems: list[dict] = []
    choices = definition.get("choices") or {}

    def walk(fields: list, path: str) -> None:
        for i, f in enumerate(fields):
            if "example" in f:
                check = _make_check(f, choices)
                bad = check(f["example"]) if check is not None else None
                if bad is not None:
                    problems.append(
                        {
                            "path": f"{path}[{i}].example",
                            "code": "bad_example",
                            "message": "The example does not pass its field's check: "
                            + message(bad[1], label="Contoh", **bad[2]),
                        }
                    )
            if f["type"] in ("group", "repeat"):
                walk(f["fields"], f"{path}[{i}].fields")

    walk(definition["fields"], "fields")
    return problems


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


class _State:
    __slots__ = ("errors", "photos", "used_photos", "root")

    def __init__(self, photos: dict, root: dict):
        self.errors: list[dict] = []
        self.photos = photos
        self.used_photos: set[str] = set()
        self.root = root


def _error(st: _State, path: str, code: str, message: str) -> None:
    st.errors.append({"path": path, "code": code, "message": message})


def _rule(st: _State, fn, path: str, what: str) -> Any:
    try:
        return truthy(fn(st.root))
    except JsonLogicError:
        _error(st, path, "rule_error", message(f"rule_error.{what}"))
        return None


def _constraint_message(node: _Node) -> str:
    return message("constraint", label=node.label, constraint_message=node.constraint_message)


def _walk(
    nodes: tuple[_Node, ...],
    names: frozenset,
    raw: dict,
    out: dict,
    prefix: str,
    photo_prefix: str,
    st: _State,
    helpers: tuple = (),
) -> None:
    """Validate one container (the answers, a group or a repeat item) into ``out``.

    ``out`` starts as a shallow copy of ``raw`` and is the container the rules see,
    so an answer dropped as not relevant is already gone for the questions after it.
    """
    if not raw.keys() <= names:
        for key in [k for k in raw if k not in names]:
            _error(
                st,
                f"answers.{prefix}{key}",
                "unknown_field",
                message("unknown_field", key=key),
            )
            del out[key]
    root = st.root
    if helpers:
        visit_date = root["_visit"]["date"]
        for helper, source in helpers:
            out[helper] = age_in_years(raw.get(source), visit_date)
    for node in nodes:
        name = node.name
        v = out.get(name, _MISSING)
        if node.relevant is not None:
            rel = _rule(st, node.relevant, f"answers.{prefix}{name}", "relevant")
            if not rel:
                if v is not _MISSING:
                    del out[name]  # not relevant: ignored and dropped (ODK semantics)
                continue
        kind = node.kind
        if kind == _VALUE:
            if v is _MISSING or v is None or v == "" or v == []:
                if node.required:
                    _error(
                        st,
                        f"answers.{prefix}{name}",
                        "required",
                        message("required", label=node.label),
                    )
                if v is not _MISSING:
                    del out[name]
                continue
            bad = node.check(v)
            if bad is not None:
                _error(
                    st,
                    f"answers.{prefix}{name}",
                    bad[0],
                    message(bad[1], label=node.label, **bad[2]),
                )
                continue
            if node.constraint is not None:
                root["value"] = v
                ok = _rule(st, node.constraint, f"answers.{prefix}{name}", "constraint")
                if ok is False:
                    _error(
                        st,
                        f"answers.{prefix}{name}",
                        "constraint",
                        _constraint_message(node),
                    )
        elif kind == _REPEAT:
            _walk_repeat(node, v, out, prefix, photo_prefix, st)
        elif kind == _GROUP:
            if v is _MISSING or v is None:
                v = {}
            elif type(v) is not dict:
                _error(
                    st,
                    f"answers.{prefix}{name}",
                    "type",
                    message("type.group", label=node.label),
                )
                del out[name]
                continue
            sub = dict(v)
            out[name] = sub
            _walk(
                node.children, node.names, v, sub, f"{prefix}{name}.", f"{photo_prefix}{name}.", st
            )
            if not sub:
                del out[name]
            elif node.constraint is not None:
                root["value"] = sub
                if _rule(st, node.constraint, f"answers.{prefix}{name}", "constraint") is False:
                    _error(
                        st,
                        f"answers.{prefix}{name}",
                        "constraint",
                        _constraint_message(node),
                    )
        elif kind == _PHOTO:
            _walk_photo(node, v, out, prefix, photo_prefix, st)
        else:  # a note takes no answer
            if v is not _MISSING:
                _error(
                    st,
                    f"answers.{prefix}{name}",
                    "unknown_field",
                    message("unknown_field.note", label=node.label),
                )
                del out[name]


def _walk_repeat(
    node: _Node, v: Any, out: dict, prefix: str, photo_prefix: str, st: _State
) -> None:
    name = node.name
    path = f"answers.{prefix}{name}"
    if v is _MISSING or v is None:
        v = []
    elif type(v) is not list:
        _error(st, path, "type", message("type.repeat", label=node.label))
        del out[name]
        return
    n = len(v)
    if n == 0 and node.required:
        _error(st, path, "required", message("required.repeat", label=node.label))
    if node.min_count is not None and n < node.min_count and n:
        _error(
            st,
            path,
            "min_count",
            message("min_count.repeat", label=node.label, min_count=number(node.min_count)),
        )
    if node.max_count is not None and n > node.max_count:
        _error(
            st,
            path,
            "max_count",
            message("max_count.repeat", label=node.label, max_count=number(node.max_count)),
        )
    root = st.root
    saved_item = root.get("_item")
    saved_parent = root.get("_parent")
    helpers = node.helpers
    cleaned: list = []
    for i, item in enumerate(v):
        item_prefix = f"{prefix}{name}[{i}]."
        if type(item) is not dict:
            _error(st, f"answers.{prefix}{name}[{i}]", "type", message("type.repeat_entry"))
            continue
        sub = dict(item)
        root["_parent"] = saved_item
        root["_item"] = sub
        _walk(
            node.children,
            node.names,
            item,
            sub,
            item_prefix,
            f"{photo_prefix}{name}[{i}].",
            st,
            helpers,
        )
        for helper, _ in helpers:
            del sub[helper]
        cleaned.append(sub)
    root["_item"] = saved_item
    root["_parent"] = saved_parent
    if cleaned:
        out[name] = cleaned
    elif name in out:
        del out[name]
    if node.constraint is not None:
        root["value"] = cleaned
        if _rule(st, node.constraint, path, "constraint") is False:
            _error(st, path, "constraint", _constraint_message(node))


def _walk_photo(node: _Node, v: Any, out: dict, prefix: str, photo_prefix: str, st: _State) -> None:
    name = node.name
    key = photo_prefix + name
    entry = st.photos.get(key)
    path = f"answers.{prefix}{name}"
    if v is not _MISSING and v is not None and type(v) is not str:
        _error(st, path, "type", message("type.photo", label=node.label))
        del out[name]
        return
    if entry is None:
        if node.required:
            _error(
                st,
                path,
                "required",
                message("required.photo", label=node.label, key=key),
            )
        elif v is not _MISSING and v:
            _error(st, path, "photo_missing", message("photo_missing", label=node.label))
        if v is not _MISSING:
            del out[name]
        return
    st.used_photos.add(key)
    out[name] = entry["sha256"]


def _collect_photos(photos: Any, st: _State, form: Form) -> dict:
    """Index the visit's photos by field; report malformed entries at ``photos[i]``."""
    by_field: dict[str, dict] = {}
    if photos is None:
        return by_field
    if type(photos) is not list:
        _error(st, "photos", "type", message("type.photos"))
        return by_field
    for i, p in enumerate(photos):
        if type(p) is not dict:
            _error(st, f"photos[{i}]", "type", message("type.photo_entry"))
            continue
        field = p.get("field")
        sha = p.get("sha256")
        if type(field) is not str or not field:
            _error(st, f"photos[{i}].field", "required", message("required.photo_field"))
            continue
        if _INDEX_RE.sub("[]", field) not in form.photo_keys:
            _error(
                st,
                f"photos[{i}].field",
                "unknown_field",
                message("unknown_field.photo", field=field),
            )
            continue
        if type(sha) is not str or not _SHA256_RE.match(sha):
            _error(
                st,
                f"photos[{i}].sha256",
                "type",
                message("type.photo_sha256"),
            )
            continue
        fname = p.get("filename")
        if fname is not None and type(fname) is not str:
            _error(st, f"photos[{i}].filename", "type", message("type.photo_filename"))
            continue
        if field in by_field:
            _error(
                st,
                f"photos[{i}].field",
                "duplicate",
                message("duplicate.photo", field=field),
            )
            continue
        by_field[field] = p
    return by_field


def validate_visit(form: Form | dict, visit: Any) -> ValidationResult:
    """Check a pushed visit against the exact form version; report every error at once.

    Returns ``(answers, errors)``: the cleaned answers (non-relevant answers dropped,
    blanks dropped, photo fields holding their sha256) and the list of errors.
    """
    if not isinstance(form, Form):
        form = load_form(form)
    root: dict = {}
    st = _State({}, root)
    if type(visit) is not dict:
        _error(st, "", "type", message("type.visit"))
        return ValidationResult({}, st.errors)
    if visit.get("form_id") != form.form_id:
        _error(
            st,
            "form_id",
            "form_mismatch",
            message(
                "form_mismatch.form_id", got=show(visit.get("form_id")), want=show(form.form_id)
            ),
        )
    fv = visit.get("form_version")
    if type(fv) is not int or fv != form.version:
        _error(
            st,
            "form_version",
            "form_mismatch",
            message("form_mismatch.form_version", got=show(fv), want=number(form.version)),
        )
    started = visit.get("started_at")
    if started is None:
        _error(st, "started_at", "required", message("required.started_at"))
        visit_date = None
    elif not valid_datetime(started):
        _error(
            st,
            "started_at",
            "type",
            message("type.started_at"),
        )
        visit_date = None
    else:
        visit_date = started[:10]
    answers = visit.get("answers")
    if type(answers) is not dict:
        _error(
            st,
            "answers",
            "required" if answers is None else "type",
            message("required.answers" if answers is None else "type.answers"),
        )
        return ValidationResult({}, st.errors)
    st.photos = _collect_photos(visit.get("photos"), st, form)
    known = answers
    if not answers.keys() <= form.names:
        for key in [k for k in answers if k not in form.names]:
            _error(st, f"answers.{key}", "unknown_field", message("unknown_field.top", key=key))
        known = {k: v for k, v in answers.items() if k in form.names}
    root.update(known)
    root["_visit"] = {"date": visit_date}
    root["_item"] = None
    root["_parent"] = None
    _walk(form.nodes, form.names, known, root, "", "", st, form.helpers)
    for key in _CONTEXT_KEYS:
        root.pop(key, None)
    for helper, _ in form.helpers:
        root.pop(helper, None)
    return ValidationResult(root, st.errors)
