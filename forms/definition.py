"""Checking form definitions and hashing them.

A definition is published once and then validates visits for years, so every
problem is reported up front, each with the path of the offending key, instead
of surfacing as a confusing verdict on a phone in the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from forms.jsonlogic import JS_OPERATORS

TYPES = frozenset(
    {
        "text",
        "integer",
        "decimal",
        "boolean",
        "date",
        "datetime",
        "select_one",
        "select_multiple",
        "geopoint",
        "photo",
        "note",
        "group",
        "repeat",
    }
)
SELECT_TYPES = frozenset({"select_one", "select_multiple"})
CONTAINER_TYPES = frozenset({"group", "repeat"})
# Names the engine puts into the JsonLogic data context; no field may take them.
RESERVED_NAMES = frozenset({"value", "_item", "_parent", "_visit"})
ITERATORS = frozenset({"map", "filter", "reduce", "all", "none", "some"})
# Operators a definition may use: json-logic-js's own, minus "log" (console output).
ALLOWED_OPERATORS = JS_OPERATORS - {"log"}

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
# Regex constructs that Python and JavaScript read differently (or only one reads).
_NON_PORTABLE_RE = re.compile(r"\(\?(?![:=!])|\\[AZzGQE]|\(\?<[=!]|\[\[:|\\p\{|\\P\{")

TOP_KEYS = frozenset({"form_id", "version", "title", "description", "choices", "fields"})
COMMON_KEYS = frozenset({"name", "type", "label", "hint", "relevant"})
VALUE_KEYS = COMMON_KEYS | {
    "required",
    "constraint",
    "constraint_message",
    "prefill",
    "verifies",
    "example",
}
KEYS_BY_TYPE: dict[str, frozenset[str]] = {
    "text": VALUE_KEYS | {"min_length", "max_length", "pattern"},
    "integer": VALUE_KEYS | {"min", "max"},
    "decimal": VALUE_KEYS | {"min", "max"},
    "boolean": VALUE_KEYS,
    "date": VALUE_KEYS | {"min", "max", "age_helper"},
    "datetime": VALUE_KEYS,
    "select_one": VALUE_KEYS | {"choices"},
    "select_multiple": VALUE_KEYS | {"choices", "min_count", "max_count"},
    "geopoint": VALUE_KEYS,
    "photo": COMMON_KEYS | {"required"},
    "note": COMMON_KEYS,
    "group": COMMON_KEYS | {"fields", "constraint", "constraint_message"},
    "repeat": COMMON_KEYS
    | {
        "fields",
        "required",
        "constraint",
        "constraint_message",
        "prefill",
        "verifies",
        "min_count",
        "max_count",
    },
}


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is: the bytes the content hash is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(definition: dict) -> str:
    """sha256 (hex) of the canonical JSON, so a version's identity survives key reordering."""
    return hashlib.sha256(canonical_json(definition).encode("utf-8")).hexdigest()


def _err(errors: list[dict], path: str, code: str, message: str) -> None:
    errors.append({"path": path, "code": code, "message": message})


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _check_label(errors: list[dict], path: str, label: Any, required: bool = True) -> None:
    if label is None:
        if required:
            _err(errors, path, "required", "A label is required (Indonesian, key 'id').")
        return
    if type(label) is str:
        if not label.strip():
            _err(errors, path, "bad_label", "A label must not be empty.")
        return
    if type(label) is not dict:
        _err(errors, path, "bad_label", 'A label is a string or {"id": "...", "en": "..."}.')
        return
    if type(label.get("id")) is not str or not label["id"].strip():
        _err(errors, f"{path}.id", "required", "A label needs its Indonesian text under 'id'.")
    for lang, text in label.items():
        if type(lang) is not str or not re.fullmatch(r"[a-z]{2}", lang):
            _err(errors, f"{path}.{lang}", "bad_label", "Label languages are 2-letter codes.")
        elif type(text) is not str:
            _err(errors, f"{path}.{lang}", "bad_label", "A label's text must be a string.")


def check_pattern(pattern: Any) -> str | None:
    """Why ``pattern`` is not a portable regular expression, or None when it is fine."""
    if type(pattern) is not str or not pattern:
        return "A pattern is a non-empty regular expression string."
    if _NON_PORTABLE_RE.search(pattern):
        return (
            "The pattern uses a construct JavaScript and Python read differently "
            "(inline flags, named groups, lookbehind, \\A, \\Z, \\p{...})."
        )
    try:
        re.compile(pattern, re.ASCII)
    except re.error as exc:
        return f"The pattern is not a valid regular expression: {exc}."
    return None


def _check_choices(errors: list[dict], choices: Any) -> dict[str, list]:
    """Return the usable choice lists; report every malformed one."""
    if choices is None:
        return {}
    if type(choices) is not dict:
        _err(errors, "choices", "type", "'choices' maps a list name to its list of options.")
        return {}
    usable: dict[str, list] = {}
    for list_name, options in choices.items():
        base = f"choices.{list_name}"
        if not NAME_RE.match(str(list_name)):
            _err(errors, base, "bad_name", "Choice list names are lowercase snake_case.")
        if type(options) is not list or not options:
            _err(errors, base, "type", "A choice list is a non-empty list of options.")
            continue
        seen: set = set()
        kinds: set = set()
        for i, opt in enumerate(options):
            p = f"{base}[{i}]"
            if type(opt) is not dict:
                _err(errors, p, "type", 'An option is {"value": ..., "label": ...}.')
                continue
            for key in opt:
                if key not in ("value", "label"):
                    _err(errors, f"{p}.{key}", "unknown_key", f"Unknown option key '{key}'.")
            value = opt.get("value")
            if not (_is_int(value) or type(value) is str):
                _err(errors, f"{p}.value", "type", "An option value is an integer or a string.")
            else:
                kinds.add(type(value))
                if value in seen:
                    _err(errors, f"{p}.value", "duplicate", f"Option value {value!r} repeats.")
                seen.add(value)
            _check_label(errors, f"{p}.label", opt.get("label"))
        if len(kinds) > 1:
            _err(errors, base, "type", "Option values of one list are all integers or all strings.")
        usable[list_name] = options
    return usable


class _Scope:
    """What a rule may name with ``var``: the root's fields and, inside repeats, ``_item``."""

    def __init__(self, root: dict, item: dict | None, parent: dict | None):
        self.root = root
        self.item = item
        self.parent = parent


def _names_of(fields: Any) -> dict:
    """name -> field (with a date field's age helper as a pseudo field) for var checking."""
    out: dict = {}
    if type(fields) is not list:
        return out
    for f in fields:
        if type(f) is dict and type(f.get("name")) is str:
            out[f["name"]] = f
            if f.get("type") == "date" and type(f.get("age_helper")) is str:
                out[f["age_helper"]] = {"type": "integer"}
    return out


def _var_known(path: str, scope: _Scope, allow_value: bool) -> bool:
    parts = path.split(".")
    head = parts[0]
    if head == "_visit":
        return len(parts) == 1 or parts[1] == "date"
    if head == "value":
        return allow_value
    if head == "_item":
        if scope.item is None:
            return False
        names, rest = scope.item, parts[1:]
    elif head == "_parent":
        if scope.parent is None:
            return False
        names, rest = scope.parent, parts[1:]
    else:
        names, rest = scope.root, parts
    for i, part in enumerate(rest):
        field = names.get(part)
        if field is None:
            return False
        if field.get("type") != "group" or i == len(rest) - 1:
            return True  # repeats, geopoints...: deeper parts are data, not fields
        names = _names_of(field.get("fields"))
    return True


def check_rule(
    rule: Any, path: str, errors: list[dict], scope: _Scope | None = None, allow_value: bool = False
) -> None:
    """Report bad operators, non-logic objects and (with a scope) unknown var names."""

    def walk(r: Any, p: str, scoped: bool) -> None:
        if type(r) is list:
            for i, x in enumerate(r):
                walk(x, f"{p}[{i}]", scoped)
            return
        if type(r) is not dict:
            return
        if len(r) != 1:
            _err(
                errors,
                p,
                "bad_rule",
                "An object inside a rule must have exactly one key, its operator.",
            )
            return
        ((op, values),) = r.items()
        if op not in ALLOWED_OPERATORS:
            _err(
                errors,
                p,
                "bad_operator",
                f"Unknown JsonLogic operator '{op}' (json-logic-js could not evaluate it).",
            )
            return
        args = values if type(values) is list else [values]
        if op == "var" and scoped and scope is not None and args and type(args[0]) is str:
            if args[0] and not _var_known(args[0], scope, allow_value):
                _err(
                    errors,
                    f"{p}.var",
                    "unknown_var",
                    f"The rule reads '{args[0]}', which is no field in scope.",
                )
        for i, a in enumerate(args):
            # An iterator's body sees each element as its data, not the answers.
            walk(a, f"{p}.{op}[{i}]", scoped and not (op in ITERATORS and i >= 1))

    walk(rule, path, True)


def _check_range(errors: list[dict], path: str, field: dict, ftype: str) -> None:
    lo, hi = field.get("min"), field.get("max")
    for key, v in (("min", lo), ("max", hi)):
        if v is None:
            continue
        if ftype == "integer" and not _is_int(v):
            _err(errors, f"{path}.{key}", "type", f"'{key}' of an integer field is an integer.")
        elif ftype == "decimal" and not _is_number(v):
            _err(errors, f"{path}.{key}", "type", f"'{key}' of a decimal field is a number.")
        elif ftype == "date" and not (type(v) is str and DATE_RE.match(v)):
            _err(errors, f"{path}.{key}", "type", f"'{key}' of a date field is YYYY-MM-DD.")
    if lo is not None and hi is not None and type(lo) is type(hi) and lo > hi:
        _err(errors, f"{path}.min", "bad_range", "'min' is greater than 'max'.")


def _check_count(errors: list[dict], path: str, field: dict, lo_key: str, hi_key: str) -> None:
    lo, hi = field.get(lo_key), field.get(hi_key)
    for key, v in ((lo_key, lo), (hi_key, hi)):
        if v is not None and (not _is_int(v) or v < 0):
            _err(errors, f"{path}.{key}", "type", f"'{key}' is a non-negative integer.")
    if _is_int(lo) and _is_int(hi) and lo > hi:
        _err(errors, f"{path}.{lo_key}", "bad_range", f"'{lo_key}' is greater than '{hi_key}'.")


def _check_fields(
    errors: list[dict],
    fields: Any,
    path: str,
    choices: dict,
    root_names: dict,
    item: dict | None,
    parent: dict | None,
    in_repeat: bool,
) -> None:
    if type(fields) is not list or not fields:
        _err(errors, path, "required", "'fields' is a non-empty list of fields.")
        return
    seen: dict[str, int] = {}
    sibling_names = {f.get("name") for f in fields if type(f) is dict}
    scope = _Scope(root_names, item, parent)
    for i, field in enumerate(fields):
        p = f"{path}[{i}]"
        if type(field) is not dict:
            _err(errors, p, "type", "A field is an object.")
            continue
        name = field.get("name")
        if type(name) is not str or not NAME_RE.match(name):
            _err(
                errors,
                f"{p}.name",
                "bad_name",
                "A field name is lowercase snake_case starting with a letter.",
            )
        elif name in RESERVED_NAMES:
            _err(errors, f"{p}.name", "bad_name", f"'{name}' is reserved for the rule context.")
        elif name in seen:
            _err(
                errors,
                f"{p}.name",
                "duplicate_name",
                f"'{name}' is already the name of {path}[{seen[name]}].",
            )
        else:
            seen[name] = i
        ftype = field.get("type")
        if ftype not in TYPES:
            _err(
                errors,
                f"{p}.type",
                "unknown_type",
                f"Unknown field type {ftype!r}; one of {', '.join(sorted(TYPES))}.",
            )
            continue
        for key in field:
            if key not in KEYS_BY_TYPE[ftype]:
                _err(
                    errors, f"{p}.{key}", "unknown_key", f"'{key}' is not a key of a {ftype} field."
                )
        _check_label(errors, f"{p}.label", field.get("label"))
        if "hint" in field:
            _check_label(errors, f"{p}.hint", field["hint"])
        if "required" in field and type(field["required"]) is not bool:
            _err(errors, f"{p}.required", "type", "'required' is true or false.")
        for key in ("prefill", "verifies"):
            if key in field and (type(field[key]) is not str or not PATH_RE.match(field[key])):
                _err(
                    errors,
                    f"{p}.{key}",
                    "bad_path",
                    f"'{key}' is a dotted path into the record, like 'rumah.lantai'.",
                )
        if "relevant" in field:
            check_rule(field["relevant"], f"{p}.relevant", errors, scope)
        if "constraint" in field:
            check_rule(field["constraint"], f"{p}.constraint", errors, scope, allow_value=True)
        if "constraint_message" in field:
            if "constraint" not in field:
                _err(
                    errors,
                    f"{p}.constraint_message",
                    "unknown_key",
                    "'constraint_message' needs a 'constraint'.",
                )
            _check_label(errors, f"{p}.constraint_message", field["constraint_message"])
        if ftype in SELECT_TYPES:
            list_name = field.get("choices")
            if list_name is None:
                _err(
                    errors,
                    f"{p}.choices",
                    "choices_missing",
                    f"A {ftype} field names its choice list in 'choices'.",
                )
            elif type(list_name) is not str or list_name not in choices:
                _err(
                    errors,
                    f"{p}.choices",
                    "choices_missing",
                    f"Choice list {list_name!r} is not defined under the form's 'choices'.",
                )
        if ftype in ("integer", "decimal", "date"):
            _check_range(errors, p, field, ftype)
        if ftype == "text":
            _check_count(errors, p, field, "min_length", "max_length")
            if "pattern" in field:
                problem = check_pattern(field["pattern"])
                if problem:
                    _err(errors, f"{p}.pattern", "bad_pattern", problem)
        if ftype in ("select_multiple", "repeat"):
            _check_count(errors, p, field, "min_count", "max_count")
        if ftype == "date" and "age_helper" in field:
            helper = field["age_helper"]
            if type(helper) is not str or not NAME_RE.match(helper) or helper in RESERVED_NAMES:
                _err(
                    errors,
                    f"{p}.age_helper",
                    "bad_name",
                    "'age_helper' names the computed age, lowercase snake_case.",
                )
            elif helper in sibling_names:
                _err(
                    errors,
                    f"{p}.age_helper",
                    "duplicate_name",
                    f"Age helper '{helper}' collides with a field of the same name.",
                )
        if ftype == "group":
            _check_fields(
                errors,
                field.get("fields"),
                f"{p}.fields",
                choices,
                root_names,
                item,
                parent,
                in_repeat,
            )
        elif ftype == "repeat":
            _check_fields(
                errors,
                field.get("fields"),
                f"{p}.fields",
                choices,
                root_names,
                _names_of(field.get("fields")),
                item,
                True,
            )


def check_definition(definition: Any) -> list[dict]:
    """Every problem of a form definition as ``{"path", "code", "message"}``; [] when fine."""
    errors: list[dict] = []
    if type(definition) is not dict:
        _err(errors, "", "type", "A form definition is a JSON object.")
        return errors
    for key in definition:
        if key not in TOP_KEYS:
            _err(errors, key, "unknown_key", f"Unknown top-level key '{key}'.")
    form_id = definition.get("form_id")
    if type(form_id) is not str or not NAME_RE.match(form_id):
        _err(errors, "form_id", "bad_name", "'form_id' is lowercase snake_case, like 'survei_x'.")
    version = definition.get("version")
    if not _is_int(version) or version < 1:
        _err(errors, "version", "type", "'version' is a positive integer.")
    _check_label(errors, "title", definition.get("title"))
    if "description" in definition:
        _check_label(errors, "description", definition["description"])
    choices = _check_choices(errors, definition.get("choices"))
    fields = definition.get("fields")
    _check_fields(errors, fields, "fields", choices, _names_of(fields), None, None, False)
    if not errors:
        # Only a sound definition can be compiled; this catches examples that do not fit.
        from forms.engine import example_problems

        errors.extend(example_problems(definition))
    return errors
