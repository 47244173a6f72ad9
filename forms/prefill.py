"""Prefilled answers from a verified record, and complete example visits.

The phone starts a visit from ``prefill``: the enumerator confirms or corrects
what the registry says. ``example_visit`` goes one step further and answers every
remaining relevant question, so phone teams and tests get a valid payload.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid as uuid_mod
from datetime import datetime, timedelta, timezone
from typing import Any

from forms.engine import (
    _GROUP,
    _NOTE,
    _PHOTO,
    _REPEAT,
    Form,
    _Node,
    age_in_years,
    validate_visit,
)
from forms.jsonlogic import JsonLogicError, truthy

_WIB = timezone(timedelta(hours=7))
_PATH_PART_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@functools.lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def record_get(record: Any, path: str) -> Any:
    """The value at a dotted path of a record, or None."""
    cur = record
    for part in _parts(path):  # a form has a few dozen paths, read for every family
        if type(cur) is not dict:
            return None
        cur = cur.get(part)
    return cur


def _prefill_nodes(nodes: tuple[_Node, ...], source: Any, out: dict) -> None:
    for node in nodes:
        path = node.field.get("prefill")
        if node.kind == _GROUP:
            sub: dict = {}
            _prefill_nodes(node.children, source, sub)
            if sub:
                out[node.name] = sub
        elif node.kind == _REPEAT:
            if path is None:
                continue
            items = record_get(source, path)
            if type(items) is not list:
                continue
            entries = []
            for member in items:
                entry: dict = {}
                if type(member) is dict:
                    _prefill_nodes(node.children, member, entry)
                entries.append(entry)
            if entries:
                out[node.name] = entries
        elif path is not None and node.check is not None:
            value = record_get(source, path)
            # A registry value that does not fit the question is left for the enumerator.
            if value is not None and value != "" and node.check(value) is None:
                out[node.name] = value


def prefill(form: Form, record: dict) -> dict:
    """The answers a phone starts from: every ``prefill`` path read from the record.

    Paths are read from the record's root, and inside a repeat from the member the
    entry stands for. Values that would not pass the question's type check are skipped.
    """
    out: dict = {}
    _prefill_nodes(form.nodes, record, out)
    return out


# ---------------------------------------------------------------------------
# Example visits
# ---------------------------------------------------------------------------


def photo_placeholder(field: str) -> dict:
    """A photos entry whose hash is sha256 of the field name: stands in for real bytes."""
    return {
        "field": field,
        "sha256": hashlib.sha256(field.encode("utf-8")).hexdigest(),
        "filename": f"{field.replace('[', '_').replace(']', '').replace('.', '_')}.jpg",
    }


def _default_value(node: _Node, form: Form, ctx: dict, record: dict) -> Any:
    """A value that passes the field's own checks, when the definition gives no example."""
    field = node.field
    if "example" in field:
        return field["example"]
    ftype = node.type
    if ftype in ("select_one", "select_multiple"):
        first = form.choices[field["choices"]][0]["value"]
        return first if ftype == "select_one" else [first]
    if ftype == "boolean":
        return False
    if ftype in ("integer", "decimal"):
        lo = field.get("min", 0)
        hi = field.get("max")
        return max(lo, 0) if hi is None or max(lo, 0) <= hi else lo
    if ftype == "date":
        return ctx["_visit"]["date"] or "2000-01-01"
    if ftype == "datetime":
        return ctx["_visit"]["started_at"]
    if ftype == "geopoint":
        lat, lon = record.get("lat"), record.get("lon")
        if type(lat) in (int, float) and type(lon) in (int, float):
            return {"lat": lat, "lon": lon, "accuracy_m": 8}
        return {"lat": -6.2, "lon": 106.8, "accuracy_m": 8}
    if ftype == "text":
        return "x" * max(field.get("min_length", 1), 1)
    return None


def _relevant(node: _Node, ctx: dict) -> bool:
    if node.relevant is None:
        return True
    try:
        return truthy(node.relevant(ctx))
    except JsonLogicError:
        return False


def _fill(
    nodes: tuple[_Node, ...],
    out: dict,
    ctx: dict,
    form: Form,
    record: dict,
    photos: list,
    photo_prefix: str,
    helpers: tuple,
) -> None:
    """Answer every relevant, unanswered question in place; drop what is not relevant."""
    for helper, source in helpers:
        out[helper] = age_in_years(out.get(source), ctx["_visit"]["date"])
    for node in nodes:
        name = node.name
        if not _relevant(node, ctx):
            out.pop(name, None)
            continue
        if node.kind == _NOTE:
            continue
        if node.kind == _PHOTO:
            key = photo_prefix + name
            if not any(p.get("field") == key for p in photos):
                entry = photo_placeholder(key)
                photos.append(entry)
            out[name] = next(p for p in photos if p.get("field") == key).get("filename", key)
            continue
        if node.kind == _GROUP:
            sub = out.get(name)
            if type(sub) is not dict:
                sub = out[name] = {}
            _fill(node.children, sub, ctx, form, record, photos, f"{photo_prefix}{name}.", ())
            continue
        if node.kind == _REPEAT:
            items = out.get(name)
            if type(items) is not list:
                items = out[name] = []
            if not items and (node.required or node.min_count):
                items.extend({} for _ in range(max(node.min_count or 1, 1)))
            saved = ctx.get("_item")
            for i, item in enumerate(items):
                ctx["_parent"] = saved
                ctx["_item"] = item
                _fill(
                    node.children,
                    item,
                    ctx,
                    form,
                    record,
                    photos,
                    f"{photo_prefix}{name}[{i}].",
                    node.helpers,
                )
                for helper, _ in node.helpers:
                    item.pop(helper, None)
            ctx["_item"] = saved
            continue
        if out.get(name) in (None, "") and (node.required or "example" in node.field):
            out[name] = _default_value(node, form, ctx, record)


def _ordered(nodes: tuple[_Node, ...], out: dict) -> dict:
    """The answers in the form's question order, so a printed example reads like the form."""
    result: dict = {}
    for node in nodes:
        if node.name not in out:
            continue
        value = out[node.name]
        if node.kind == _GROUP and type(value) is dict:
            value = _ordered(node.children, value)
        elif node.kind == _REPEAT and type(value) is list:
            value = [_ordered(node.children, v) if type(v) is dict else v for v in value]
        result[node.name] = value
    return result


def _get_path(answers: dict, path: str) -> Any:
    cur: Any = answers
    for m in _PATH_PART_RE.finditer(path):
        key, index = m.group(1), m.group(2)
        if index is not None:
            cur = cur[int(index)] if type(cur) is list and int(index) < len(cur) else None
        else:
            cur = cur.get(key) if type(cur) is dict else None
    return cur


def _set_path(answers: dict, path: str, value: Any) -> bool:
    """Set ``answers.a[2].b``-style paths (without the ``answers.`` prefix)."""
    parts = [(m.group(1), m.group(2)) for m in _PATH_PART_RE.finditer(path)]
    cur: Any = answers
    for key, index in parts[:-1]:
        cur = cur[int(index)] if index is not None else cur.get(key)
        if cur is None:
            return False
    key, index = parts[-1]
    if index is not None or type(cur) is not dict:
        return False
    cur[key] = value
    return True


def _node_at(form: Form, path: str) -> _Node | None:
    nodes = form.nodes
    node = None
    for m in _PATH_PART_RE.finditer(path):
        if m.group(2) is not None:
            continue
        node = next((n for n in nodes if n.name == m.group(1)), None)
        if node is None:
            return None
        nodes = node.children
    return node


def example_visit(
    form: Form,
    record: dict,
    *,
    uuid: str | None = None,
    started_at: str | None = None,
    photos: list | None = None,
) -> dict:
    """One complete, valid visit in the push format: the family found and matching its record.

    Starts from ``prefill``; every other relevant question takes the field's ``example``
    (or a type default), photos get placeholder hashes (sha256 of the field name).
    """
    if started_at is None:
        started_at = datetime.now(_WIB).replace(microsecond=0).isoformat()
    start = datetime.fromisoformat(started_at)
    answers = prefill(form, record)
    photo_list = [dict(p) for p in photos] if photos else []
    ctx_extra = {
        "_visit": {"date": started_at[:10], "started_at": started_at},
        "_item": None,
        "_parent": None,
    }
    visit: dict = {}
    for _attempt in range(3):
        ctx = answers
        ctx.update(ctx_extra)
        _fill(form.nodes, answers, ctx, form, record, photo_list, "", form.helpers)
        for key in ("_visit", "_item", "_parent", "value"):
            answers.pop(key, None)
        for helper, _ in form.helpers:
            answers.pop(helper, None)
        answers = _ordered(form.nodes, answers)
        visit = _envelope(form, record, answers, photo_list, uuid, started_at, start)
        errors = validate_visit(form, visit).errors
        fixable = [e for e in errors if e["path"].startswith("answers.")]
        if not fixable:
            break
        for e in fixable:  # a record value the form rejects: use the example instead
            path = e["path"][len("answers.") :]
            node = _node_at(form, path)
            if node is not None and node.check is not None:
                value = _default_value(node, form, ctx_extra, record)
                if node.type == "boolean" and _get_path(answers, path) == value:
                    value = not value  # a cross-question constraint wants the other answer
                _set_path(answers, path, value)
    return visit


def _envelope(
    form: Form,
    record: dict,
    answers: dict,
    photos: list,
    uuid: str | None,
    started_at: str,
    start: datetime,
) -> dict:
    location = None
    for value in answers.values():
        if type(value) is dict and "lat" in value and "lon" in value:
            location = dict(value)
            break
    if location is None and type(record.get("lat")) in (int, float):
        location = {"lat": record["lat"], "lon": record.get("lon"), "accuracy_m": 8}
    return {
        "uuid": uuid or str(uuid_mod.uuid4()),
        "form_id": form.form_id,
        "form_version": form.version,
        "household_id": record.get("id_keluarga"),
        "base_version": 1,
        "branch_id": str(uuid_mod.uuid4()),
        "trunk_version": 1,
        "started_at": started_at,
        "ended_at": (start + timedelta(minutes=25)).isoformat(),
        "location": location,
        "answers": answers,
        "photos": photos,
    }
