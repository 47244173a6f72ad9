"""Parity of the translated rules: the same answers, evaluated by the Python JsonLogic engine
and, as XPath, by ODK's form engine, must give the same truth for every rule.

``rules_of`` lists a definition's rules (relevance and constraints, at every depth);
``parity_xform`` builds a test XForm of the same questions, without relevance, constraints or
requirements (so every answer stays in place), with one ``calculate`` per rule holding
``if(<translated rule>, 1, 0)`` beside the rule's question (inside the repeat entry for rules of
a repeat's questions); ``python_truths`` and ``engine_steps``/``engine_truths`` give both sides.
"""

from __future__ import annotations

import copy
from typing import Any

from forms.engine import age_in_years
from forms.jsonlogic import JsonLogicError, apply, truthy
from forms.xform import BOOLEAN_LIST, ROOT
from forms.xpath import FormScope, age_xpath, to_xpath, yes_no


def rules_of(definition: dict, extra: list | None = None) -> list[dict]:
    """Every rule of the definition: ``{"id", "at", "kind", "rule"}`` (``at`` a path tuple)."""
    out: list[dict] = []

    def walk(fields: list, prefix: tuple) -> None:
        for f in fields:
            at = prefix + (f["name"],)
            for kind in ("relevant", "constraint"):
                if kind in f:
                    out.append({"at": at, "kind": kind, "rule": f[kind]})
            if f["type"] in ("group", "repeat"):
                walk(f["fields"], at)

    walk(definition["fields"], ())
    for at, kind, rule in extra or []:
        out.append({"at": tuple(at.split(".")), "kind": kind, "rule": rule})
    for i, r in enumerate(out):
        r["id"] = f"_e{i}"
    return out


def _field(definition: dict, at: tuple) -> dict:
    fields = definition["fields"]
    f: dict = {}
    for name in at:
        f = next(x for x in fields if x["name"] == name)
        fields = f.get("fields", [])
    return f


def _host(scope: FormScope, definition: dict, r: dict) -> tuple:
    """Where the rule's calculate sits: inside the innermost repeat entry around its question,
    or at the top (rules of a repeat itself, of groups and of top-level questions)."""
    repeats = scope.repeats_around(r["at"])
    return repeats[0] if repeats else ()


def parity_xform(definition: dict, rules: list[dict]) -> bytes:
    from pyxform.xls2xform import convert

    scope = FormScope(definition, ROOT)
    by_host: dict[tuple, list[dict]] = {}
    for r in rules:
        host = _host(scope, definition, r)
        context = host + (r["id"],)
        kw: dict[str, Any] = {"context": context}
        if r["kind"] == "constraint":
            f = _field(definition, r["at"])
            if f["type"] in ("group", "repeat"):
                kw["value"] = scope.absolute(r["at"])
            elif host:
                ups = len(context) - len(host)
                kw["value"] = "/".join([".."] * ups + list(r["at"][len(host) :]))
            else:
                kw["value"] = scope.absolute(r["at"])
        xp = to_xpath(r["rule"], scope, r["at"], constraint=r["kind"] == "constraint", **kw)
        r["xpath"] = xp
        by_host.setdefault(host, []).append(
            {"type": "calculate", "name": r["id"], "calculation": f"if({xp}, 1, 0)"}
        )
    rows: list[dict] = []

    def walk(fields: list, prefix: tuple) -> None:
        for f in fields:
            path = prefix + (f["name"],)
            t = f["type"]
            if t in ("group", "repeat"):
                rows.append({"type": f"begin_{t}", "name": f["name"], "label": f["name"]})
                walk(f["fields"], path)
                if t == "repeat":
                    rows.extend(by_host.get(path, []))
                rows.append({"type": f"end_{t}"})
                continue
            if t == "note":
                continue
            xtype = {
                "boolean": f"select_one {BOOLEAN_LIST}",
                "select_one": f"select_one {f.get('choices')}",
                "select_multiple": f"select_multiple {f.get('choices')}",
                "photo": "image",
                "datetime": "dateTime",
            }.get(t, t)
            rows.append({"type": xtype, "name": f["name"], "label": f["name"]})
            if t == "date" and f.get("age_helper"):
                rows.append(
                    {
                        "type": "calculate",
                        "name": f["age_helper"],
                        "calculation": age_xpath("${" + f["name"] + "}"),
                    }
                )

    walk(definition["fields"], ())
    rows.extend(by_host.get((), []))
    choices = [
        {"list_name": BOOLEAN_LIST, "name": "yes", "label": "Ya"},
        {"list_name": BOOLEAN_LIST, "name": "no", "label": "Tidak"},
    ]
    for name, options in (definition.get("choices") or {}).items():
        for o in options:
            choices.append({"list_name": name, "name": str(o["value"]), "label": str(o["value"])})
    cols = {k: None for r in rows for k in r}
    book = {
        "survey": rows,
        "survey_header": [cols],
        "choices": choices,
        "choices_header": [{"list_name": None, "name": None, "label": None}],
        "settings": [{"form_id": "parity", "version": "1"}],
        "settings_header": [{"form_id": None, "version": None}],
    }
    return convert(xlsform=book, validate=False, form_name=ROOT).xform.encode("utf-8")


# ---------------------------------------------------------------------------
# Both sides
# ---------------------------------------------------------------------------


def _xform_text(f: dict, value: Any) -> str:
    t = f["type"]
    if t == "boolean":
        return yes_no(value)
    if t == "geopoint":
        return " ".join(_num(value.get(k, 0)) for k in ("lat", "lon", "altitude_m", "accuracy_m"))
    if t == "select_multiple":
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _num(v: float | int) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def engine_steps(definition: dict, answers: dict) -> list[dict]:
    """The engine's steps that put ``answers`` into the parity form."""
    steps: list[dict] = []

    def walk(fields: list, values: dict, ref: str) -> None:
        for f in fields:
            name, t = f["name"], f["type"]
            v = values.get(name)
            if t == "repeat":
                entries = v or []
                steps.append({"count": f"{ref}/{name}", "n": len(entries)})
                for i, entry in enumerate(entries, start=1):
                    walk(f["fields"], entry, f"{ref}/{name}[{i}]")
            elif t == "group":
                walk(f["fields"], v or {}, f"{ref}/{name}")
            elif t != "note" and v is not None:
                steps.append({"set": f"{ref}/{name}", "value": _xform_text(f, v)})

    walk(definition["fields"], answers, f"/{ROOT}")
    return steps


def engine_truths(definition: dict, rules: list[dict], answers: dict, nodes: dict) -> dict:
    """``{(rule id, entry index or None): bool}`` read from the engine's nodes."""
    scope = FormScope(definition, ROOT)
    out: dict = {}
    for r in rules:
        host = _host(scope, definition, r)
        if not host:
            out[(r["id"], None)] = nodes[f"/{ROOT}/{r['id']}"]["value"] == "1"
            continue
        assert len(host) == 1, "parity covers rules of top-level repeats"
        for i in range(len(answers.get(host[0]) or [])):
            ref = f"/{ROOT}/{host[0]}[{i + 1}]/{r['id']}"
            out[(r["id"], i)] = nodes[ref]["value"] == "1"
    return out


def _helpers(fields: list, entry: dict, visit_date: str) -> dict:
    entry = dict(entry)
    for f in fields:
        if f["type"] == "date" and f.get("age_helper"):
            entry[f["age_helper"]] = age_in_years(entry.get(f["name"]), visit_date)
    return entry


def python_truths(definition: dict, rules: list[dict], answers: dict, visit_date: str) -> dict:
    """The same keys as ``engine_truths``, from ``forms.jsonlogic`` on the engine's data."""
    scope = FormScope(definition, ROOT)
    base = _helpers(definition["fields"], copy.deepcopy(answers), visit_date)
    base["_visit"] = {"date": visit_date}
    base["_item"] = None
    base["_parent"] = None
    out: dict = {}
    for r in rules:
        host = _host(scope, definition, r)
        f = _field(definition, r["at"])
        entries: list = [None] if not host else list(enumerate(answers.get(host[0]) or []))
        repeat_fields = _field(definition, host)["fields"] if host else []
        for item in entries:
            data = dict(base)
            key = (r["id"], None)
            local = answers
            if item is not None:
                i, entry = item
                data["_item"] = _helpers(repeat_fields, entry, visit_date)
                key = (r["id"], i)
                local = data["_item"]
            if r["kind"] == "constraint":
                if f["type"] == "repeat":
                    value = answers.get(f["name"]) or []
                elif f["type"] == "group":
                    value = _get(answers, r["at"]) or {}
                else:
                    value = _get(local, r["at"][len(host) :])
                    if value is None:
                        continue  # constraints are not evaluated on blank answers
                data["value"] = value
            try:
                out[key] = truthy(apply(r["rule"], data))
            except JsonLogicError:
                out[key] = False  # the engine reports rule_error: not relevant, not accepted
    return out


def _get(values: dict, path: tuple) -> Any:
    v: Any = values
    for name in path:
        if not isinstance(v, dict):
            return None
        v = v.get(name)
    return v
