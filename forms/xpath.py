"""JsonLogic rules of a form definition translated to XPath 1.0, as XForms (ODK) reads it.

The XForm of a Tapak form (``forms/xform.py``) carries its relevance and constraints as XPath,
and ODK Collect, KoboCollect and Enketo must reach the same verdict as the server's JsonLogic
engine (``forms/jsonlogic.py``, which behaves like json-logic-js). The translation is therefore
**typed**: every ``var`` is resolved against the definition, and each operator is written so that
the XPath gives json-logic-js's answer for the answers an XForm can hold:

- A blank answer is ``''`` in XForms and ``null`` in JsonLogic. ``!!x`` is
  ``string-length(x) > 0`` (``boolean(node)`` is true for an empty node), ``x == null`` is
  ``string-length(x) = 0``; a number question is truthy when it is not blank and not ``0``.
- Booleans are a yes/no ``select_one`` in the XForm (codes ``yes``/``no``): ``x === true`` is
  ``x = 'yes'``, truthiness is ``x = 'yes'``.
- Relational operators convert as JavaScript does: a blank number is ``0`` there
  (``coalesce(x, 0)``); dates (``YYYY-MM-DD`` strings, compared as text in JavaScript) are
  compared with ``decimal-date-time()``; ``_visit.date`` is ``today()``.
- ``-``, ``/``, ``%``, ``min``, ``max`` use ``Number()`` (blank is 0), ``+`` and ``*`` use
  ``parseFloat`` (blank is NaN), both as json-logic-js does.
- ``filter``/``reduce``/``some``/``all``/``none`` over a repeat become predicates:
  ``reduce(filter(R, p), acc + 1, 0)`` is ``count(R[p])``, ``some`` is ``count(R[p]) > 0``,
  ``all`` is ``count(R) > 0 and count(R[not(p)]) = 0`` (json-logic-js: ``all`` of ``[]`` is false),
  ``none`` is ``count(R[p]) = 0`` (true over a blank repeat).
- Constraints are not evaluated on blank answers in XForms, and the server's engine does not
  run them on blank answers either.

What has no faithful translation (comparing text by order, mixing types in ``===``, ``map``,
``merge``, array indices, ``substr`` with a negative start...) raises ``XPathError`` naming the
rule, rather than producing an XPath that would disagree with the server.

``to_jsonlogic`` is the reverse, for the subset ``to_xpath`` produces (XLSForm import).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from forms.jsonlogic import js_to_string
from forms.jsonlogic import truthy as js_truthy

__all__ = [
    "FieldInfo",
    "FormScope",
    "XPathError",
    "age_xpath",
    "literal",
    "to_jsonlogic",
    "to_xpath",
    "yes_no",
]

YES = "yes"
NO = "no"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_NUMERIC_TYPES = frozenset({"integer", "decimal", "_age"})
_STRING_TYPES = frozenset({"text", "date", "datetime", "photo"})


class XPathError(ValueError):
    """A JsonLogic rule (or XPath) that cannot be translated faithfully."""


def yes_no(value: bool) -> str:
    """The XForm code of a boolean answer."""
    return YES if value else NO


@dataclass
class FieldInfo:
    """One question of the definition, as the translator needs it."""

    name: str
    type: str  # the definition's type; "_age" for an age helper
    path: tuple[str, ...]
    choice_kind: str | None = None  # "int" or "str" for selects
    children: dict[str, FieldInfo] = field(default_factory=dict)

    @property
    def category(self) -> str:
        t = self.type
        if t in _NUMERIC_TYPES or (t == "select_one" and self.choice_kind == "int"):
            return "num"
        if t in _STRING_TYPES or t == "select_one":
            return "str"
        if t == "boolean":
            return "bool"
        return t  # select_multiple, geopoint, group, repeat, note


def _choice_kind(definition: dict, list_name: str | None) -> str | None:
    options = (definition.get("choices") or {}).get(list_name or "", [])
    if options and all(type(o["value"]) is int for o in options):
        return "int"
    return "str" if options else None


def _index(definition: dict, fields: list, prefix: tuple[str, ...]) -> dict[str, FieldInfo]:
    out: dict[str, FieldInfo] = {}
    for f in fields:
        path = prefix + (f["name"],)
        info = FieldInfo(f["name"], f["type"], path, _choice_kind(definition, f.get("choices")))
        if f["type"] in ("group", "repeat"):
            info.children = _index(definition, f["fields"], path)
        out[f["name"]] = info
        if f["type"] == "date" and f.get("age_helper"):
            helper = f["age_helper"]
            out[helper] = FieldInfo(helper, "_age", prefix + (helper,))
    return out


class FormScope:
    """The questions of a definition, for resolving ``var`` paths (built once per form)."""

    def __init__(self, definition: dict, root: str = "data"):
        self.definition = definition
        self.root = root
        self.fields = _index(definition, definition["fields"], ())

    def find(self, path: tuple[str, ...] | str) -> FieldInfo:
        if isinstance(path, str):
            path = tuple(path.split(".")) if path else ()
        node: FieldInfo | None = None
        children = self.fields
        for name in path:
            node = children.get(name)
            if node is None:
                raise XPathError(f"no question {'.'.join(path)!r} in the form")
            children = node.children
        if node is None:
            raise XPathError("an empty question path")
        return node

    def absolute(self, path: tuple[str, ...]) -> str:
        return "/" + "/".join((self.root,) + path)

    def repeats_around(self, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Paths of the repeats enclosing ``path`` (not ``path`` itself), innermost first."""
        found = []
        for i in range(1, len(path)):
            if self.find(path[:i]).type == "repeat":
                found.append(path[:i])
        return found[::-1]


# ---------------------------------------------------------------------------
# Typed intermediate values
# ---------------------------------------------------------------------------


@dataclass
class _X:
    """A translated sub-expression.

    kind: ``lit`` (a JSON constant in ``value``), ``bool`` (a true JavaScript boolean),
    ``num`` (a number, maybe NaN, never blank), ``str`` (a string, never blank),
    ``date`` (``today()``), ``field`` (a question's node: ``info`` says its type),
    ``nodes`` (a repeat's entries, maybe filtered: ``info`` is the repeat).
    """

    kind: str
    xp: str = ""
    value: Any = None
    info: FieldInfo | None = None


def literal(value: Any) -> str:
    """An XPath literal for a JSON constant (string, number, boolean)."""
    if value is True:
        return "true()"
    if value is False:
        return "false()"
    if isinstance(value, (int, float)):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise XPathError(f"the number {value!r} has no XPath literal")
            if value.is_integer() and abs(value) < 1e15:
                return str(int(value))
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        if "'" not in value:
            return f"'{value}'"
        if '"' not in value:
            return f'"{value}"'
        parts = value.split("'")
        return "concat(" + ', "\'", '.join(f"'{p}'" for p in parts) + ")"
    raise XPathError(f"{value!r} has no XPath literal")


def _blank(x: _X) -> str:
    return f"string-length({x.xp}) = 0"


def _present(x: _X) -> str:
    return f"string-length({x.xp}) > 0"


def _show(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, separators=(",", ":"))


def age_xpath(date_xp: str) -> str:
    """Whole years from the date at ``date_xp`` to today, ``''`` when it is blank.

    The same rule as ``forms.engine.age_in_years``: year difference, minus one before the
    birthday; written on the ``YYYY-MM-DD`` strings so that no time zone is involved.
    """
    today = "format-date(today(), '%Y-%m-%d')"
    years = f"number(substr({today}, 0, 4)) - number(substr({date_xp}, 0, 4))"
    before = (
        f"number(concat(substr({today}, 5, 7), substr({today}, 8, 10))) < "
        f"number(concat(substr({date_xp}, 5, 7), substr({date_xp}, 8, 10)))"
    )
    return f"if(string-length({date_xp}) = 0, '', {years} - if({before}, 1, 0))"


# ---------------------------------------------------------------------------
# The translator
# ---------------------------------------------------------------------------


@dataclass
class _Env:
    """Where a rule is evaluated.

    ``at``: the question the rule belongs to (decides what ``_item``/``_parent`` mean);
    ``context``: the node the XPath is evaluated at (the bind's node, usually ``at``);
    ``value``: what ``{"var": "value"}`` is (a constraint's answer), or None;
    ``element``: inside ``filter``/``some``/... bodies, the repeat whose entry is the data
    (paths are then relative to the entry, the predicate's context node).
    """

    at: tuple[str, ...]
    context: tuple[str, ...]
    value: _X | None = None
    element: FieldInfo | None = None
    reduce_current: str | None = None


class _Translator:
    def __init__(self, scope: FormScope, rule: Any):
        self.scope = scope
        self.rule = rule

    def fail(self, why: str, part: Any = None) -> XPathError:
        where = f" in {_show(part)}" if part is not None and part != self.rule else ""
        return XPathError(f"cannot translate {_show(self.rule)} to XPath: {why}{where}")

    # -- entry points -----------------------------------------------------

    @staticmethod
    def op_of(rule: Any) -> tuple[str, list] | None:
        if isinstance(rule, dict) and len(rule) == 1:
            op, args = next(iter(rule.items()))
            if not isinstance(args, list):
                args = [args]
            return op, args
        return None

    def truth(self, rule: Any, env: _Env) -> str:
        """An XPath boolean that is true exactly when the rule's result is truthy."""
        parsed = self.op_of(rule)
        if parsed is not None:
            op, args = parsed
            if op == "and" or op == "or":
                if not args:
                    return "false()"
                parts = [self.truth(a, env) for a in args]
                return "(" + f" {op} ".join(parts) + ")" if len(parts) > 1 else parts[0]
            if op == "!":
                return f"not({self.truth(args[0] if args else None, env)})"
            if op == "!!":
                return self.truth(args[0] if args else None, env)
            if op in ("if", "?:"):
                return self._if(args, env, truth=True).xp
            if op == "missing":
                names = args[0] if len(args) == 1 and isinstance(args[0], list) else args
                if not names:
                    return "false()"
                blanks = [_blank(self.var(n, env)) for n in names]
                return "(" + " or ".join(blanks) + ")" if len(blanks) > 1 else blanks[0]
            if op == "missing_some":
                if len(args) != 2 or type(args[0]) is not int or not isinstance(args[1], list):
                    raise self.fail("missing_some needs [count, [names]]", rule)
                if not args[1]:
                    return "false()"
                present = " + ".join(f"if({_present(self.var(n, env))}, 1, 0)" for n in args[1])
                return f"({present}) < {args[0]}"
            if op == "filter":
                return f"count({self.nodes(rule, env).xp}) > 0"
        return self.truthy(self.value(rule, env), rule)

    def truthy(self, x: _X, rule: Any) -> str:
        k = x.kind
        if k == "lit":
            return "true()" if js_truthy(x.value) else "false()"
        if k == "bool":
            return x.xp
        if k == "num":
            return f"({x.xp} != 0 and {x.xp} = {x.xp})"
        if k == "str":
            return f"string-length({x.xp}) > 0"
        if k == "date":
            return "true()"
        if k == "nodes":
            return f"count({x.xp}) > 0"
        cat = x.info.category
        if cat == "num":
            return f"({_present(x)} and {x.xp} != 0)"
        if cat == "bool":
            return f"{x.xp} = '{YES}'"
        if cat in ("str", "select_multiple", "geopoint"):
            return _present(x)
        raise self.fail(f"the truth of a {x.info.type} has no XPath", rule)

    # -- values -----------------------------------------------------------

    def value(self, rule: Any, env: _Env) -> _X:
        if isinstance(rule, list):
            raise self.fail("an array is not a value here", rule)
        parsed = self.op_of(rule)
        if parsed is None:
            if isinstance(rule, dict):
                raise self.fail("an object inside a rule must have exactly one key", rule)
            return _X("lit", value=rule)
        op, args = parsed
        handler = _VALUE_OPS.get(op)
        if handler is None:
            if op in ("and", "or", "!", "!!", "missing", "missing_some"):
                if op in ("!", "!!"):
                    return _X("bool", self.truth(rule, env))
                raise self.fail(f"'{op}' is used as a value (only its truth can be translated)")
            raise self.fail(f"the operator '{op}' has no XPath translation")
        return handler(self, args, env, rule)

    def var(self, spec: Any, env: _Env) -> _X:
        if isinstance(spec, list):
            if len(spec) > 1:
                raise self.fail("a var with a default value has no XPath translation", spec)
            spec = spec[0] if spec else ""
        if isinstance(spec, dict):
            raise self.fail("a computed var path has no XPath translation", spec)
        if not isinstance(spec, str) or not spec:
            raise self.fail("var needs a dotted path of question names", spec)
        parts = spec.split(".")
        if env.element is not None:
            if env.reduce_current is not None:
                if parts[0] == "accumulator":
                    raise self.fail("this reduce has no XPath translation", spec)
                if parts[0] != "current":
                    raise self.fail("inside reduce only 'current' and 'accumulator' exist", spec)
                parts = parts[1:]
            return self._walk(env.element, parts, "", spec, relative=True)
        head = parts[0]
        if head == "_visit":
            if parts[1:] != ["date"]:
                raise self.fail("only _visit.date exists", spec)
            return _X("date", "today()")
        if head == "value":
            if env.value is None:
                raise self.fail("'value' exists only in a constraint", spec)
            if len(parts) == 1:
                return env.value
            base = env.value
            if base.info is not None and base.info.type == "geopoint" and len(parts) == 2:
                index = {"lat": 0, "lon": 1, "altitude_m": 2, "accuracy_m": 3}.get(parts[1])
                if index is None:
                    raise self.fail(f"a geopoint has no part {parts[1]!r}", spec)
                part = FieldInfo(parts[1], "decimal", base.info.path + (parts[1],))
                return _X("field", f"selected-at({base.xp}, {index})", info=part)
            if base.info is None:
                raise self.fail("this value has no parts", spec)
            return self._walk(base.info, parts[1:], base.xp, spec, relative=False)
        if head in ("_item", "_parent"):
            repeats = self.scope.repeats_around(env.at)
            depth = 0 if head == "_item" else 1
            if len(repeats) <= depth:
                raise self.fail(f"{head} is used outside a repeat deep enough", spec)
            target = repeats[depth]
            if env.context[: len(target)] != target:
                raise self.fail(f"{head} is not reachable from here", spec)
            ups = len(env.context) - len(target)
            base = "/".join([".."] * ups) if ups else "."
            return self._walk(self.scope.find(target), parts[1:], base, spec, relative=False)
        return self._walk(None, parts, self.scope.absolute(()), spec, relative=False)

    def _walk(
        self, start: FieldInfo | None, parts: list[str], base: str, spec: str, relative: bool
    ) -> _X:
        """Resolve ``parts`` below ``start`` (a group or repeat entry; None: the form)."""
        children = self.scope.fields if start is None else start.children
        xp = base
        info = start
        for i, name in enumerate(parts):
            if info is not None and info.type == "repeat" and i > 0:
                if name == "length" and i == len(parts) - 1:
                    return _X("num", f"count({xp})")
                raise self.fail("a path into a repeat's entries has no XPath translation", spec)
            node = children.get(name)
            if node is None:
                if name == "length" and info is not None and info.type == "repeat":
                    return _X("num", f"count({xp})")
                raise self.fail(f"no question {name!r} here", spec)
            xp = name if (relative and xp == "") else f"{xp}/{name}"
            info = node
            children = node.children
        if info is None or info is start:
            raise self.fail("this var names no question", spec)
        if info.type == "repeat":
            return _X("nodes", xp, info=info)
        return _X("field", xp, info=info)

    def nodes(self, rule: Any, env: _Env) -> _X:
        """A repeat's entries (a var) or a filtered subset (``filter``)."""
        parsed = self.op_of(rule)
        if parsed is not None and parsed[0] == "filter":
            args = parsed[1]
            if len(args) != 2:
                raise self.fail("filter needs [list, rule]", rule)
            base = self.nodes(args[0], env)
            pred = self.truth(args[1], _Env(env.at, env.context, element=base.info))
            return _X("nodes", f"{base.xp}[{pred}]", info=base.info)
        x = self.value(rule, env)
        if x.kind != "nodes":
            raise self.fail("only a repeat's entries can be iterated", rule)
        return x

    # -- operators --------------------------------------------------------

    def _if(self, args: list, env: _Env, truth: bool) -> _X:
        if not args:
            return _X("lit", value=None)
        if len(args) == 1:
            return _X("bool", self.truth(args[0], env)) if truth else self.value(args[0], env)
        cond = self.truth(args[0], env)
        then_x = self._branch(args[1], env, truth)
        rest = args[2:]
        if not rest:
            else_x = _X("lit", value=None)
            else_x = _X("bool", "false()") if truth else else_x
        else:
            else_x = self._if(rest, env, truth)
        if truth:
            return _X("bool", f"if({cond}, {then_x.xp}, {else_x.xp})")
        kinds = {self._plain_kind(then_x), self._plain_kind(else_x)}
        if len(kinds) != 1 or None in kinds:
            raise self.fail("the branches of this if are not all numbers or all text", args)
        kind = kinds.pop()
        return _X(kind, f"if({cond}, {self._plain(then_x)}, {self._plain(else_x)})")

    def _branch(self, rule: Any, env: _Env, truth: bool) -> _X:
        return _X("bool", self.truth(rule, env)) if truth else self.value(rule, env)

    @staticmethod
    def _plain_kind(x: _X) -> str | None:
        if x.kind == "lit":
            if isinstance(x.value, bool) or x.value is None:
                return None
            return "num" if isinstance(x.value, (int, float)) else "str"
        return x.kind if x.kind in ("num", "str", "bool") else None

    @staticmethod
    def _plain(x: _X) -> str:
        return literal(x.value) if x.kind == "lit" else x.xp

    def equal(self, a: _X, b: _X, strict: bool, rule: Any) -> str:
        if a.kind == "lit" and b.kind != "lit":
            a, b = b, a
        if a.kind == "lit":
            from forms.jsonlogic import js_loose_eq, js_strict_eq

            same = js_strict_eq(a.value, b.value) if strict else js_loose_eq(a.value, b.value)
            return "true()" if same else "false()"
        if b.kind == "lit":
            return self._equal_literal(a, b.value, strict, rule)
        return self._equal_values(a, b, rule)

    def _equal_literal(self, a: _X, lit: Any, strict: bool, rule: Any) -> str:
        if lit is None:
            if a.kind in ("field",):
                return _blank(a)
            if a.kind == "nodes":
                return f"count({a.xp}) = 0"
            return "false()"
        if lit == "":
            raise self.fail("a comparison with '' (use ! or missing: a blank is null)", rule)
        if a.kind == "bool":
            if isinstance(lit, bool):
                return a.xp if lit else f"not({a.xp})"
            raise self.fail("a boolean compared with a non-boolean", rule)
        if a.kind == "num":
            if isinstance(lit, (int, float)) and not isinstance(lit, bool):
                return f"{a.xp} = {literal(lit)}"
            raise self.fail("a number compared with a non-number", rule)
        if a.kind == "str":
            if isinstance(lit, str):
                return f"{a.xp} = {literal(lit)}"
            raise self.fail("text compared with a non-text value", rule)
        if a.kind == "date":
            if isinstance(lit, str):
                return f"format-date(today(), '%Y-%m-%d') = {literal(lit)}"
            raise self.fail("a date compared with a non-text value", rule)
        if a.kind != "field":
            raise self.fail("a list compared with a value", rule)
        cat = a.info.category
        if cat == "num" and isinstance(lit, (int, float)) and not isinstance(lit, bool):
            return f"{a.xp} = {literal(lit)}"
        if cat == "str" and isinstance(lit, str):
            return f"{a.xp} = {literal(lit)}"
        if cat == "bool" and isinstance(lit, bool):
            return f"{a.xp} = '{yes_no(lit)}'"
        raise self.fail(
            f"a {a.info.type} answer compared with {_show(lit)} (types differ or no XPath)", rule
        )

    def _equal_values(self, a: _X, b: _X, rule: Any) -> str:
        def cls(x: _X) -> str:
            if x.kind == "field":
                return "str" if x.info.type in ("date",) else x.info.category
            return {"date": "str"}.get(x.kind, x.kind)

        ca, cb = cls(a), cls(b)
        if ca != cb or ca not in ("num", "str", "bool"):
            raise self.fail("these two values cannot be compared in XPath", rule)
        if a.kind == "bool" or b.kind == "bool":
            if a.kind == b.kind:
                return f"({a.xp}) = ({b.xp})"
            raise self.fail("a boolean compared with an answer", rule)
        ax = self._as_text(a) if ca == "str" else a.xp
        bx = self._as_text(b) if cb == "str" else b.xp
        if a.kind == "field" and b.kind == "field":
            if ca == "num":
                return f"(number({ax}) = number({bx}) or ({_blank(a)} and {_blank(b)}))"
            return f"{ax} = {bx}"
        # a blank answer (null) never equals a computed value
        guard = [_present(x) for x in (a, b) if x.kind == "field"]
        eq = f"number({ax}) = number({bx})" if ca == "num" else f"{ax} = {bx}"
        return f"({' and '.join(guard + [eq])})" if guard else eq

    @staticmethod
    def _as_text(x: _X) -> str:
        return "format-date(today(), '%Y-%m-%d')" if x.kind == "date" else x.xp

    def relational(self, op: str, a: _X, b: _X, rule: Any) -> str:
        def cls(x: _X) -> str:
            if x.kind == "lit":
                v = x.value
                if isinstance(v, str) and _DATE_RE.match(v):
                    return "date"
                if v is None or isinstance(v, (bool, int, float)):
                    return "num"
                return "text"
            if x.kind == "date":
                return "date"
            if x.kind == "field":
                if x.info.type == "date":
                    return "date"
                return {"num": "num", "bool": "num"}.get(x.info.category, "text")
            return {"num": "num", "bool": "num"}.get(x.kind, "text")

        ca, cb = cls(a), cls(b)
        if ca == "date" and cb == "date":
            ax, bx = (self._date_number(x) for x in (a, b))
            text = f"{ax} {op} {bx}"
            if op in ("<=", ">=") and a.kind == "field" and b.kind == "field":
                text = f"({text} or ({_blank(a)} and {_blank(b)}))"
            return text
        if ca == "num" and cb == "num":
            return f"{self._number(a)} {op} {self._number(b)}"
        raise self.fail(
            "an order comparison of text, or of a date with a number, has no XPath translation",
            rule,
        )

    @staticmethod
    def _date_number(x: _X) -> str:
        if x.kind == "lit":
            return f"decimal-date-time({literal(x.value)})"
        return f"decimal-date-time({x.xp})"

    def _number(self, x: _X, blank: str = "0") -> str:
        """``Number(x)`` of JavaScript (``blank`` is what a blank answer becomes)."""
        if x.kind == "lit":
            v = x.value
            if v is None:
                return "0" if blank == "0" else "number('')"
            if isinstance(v, bool):
                return "1" if v else "0"
            if isinstance(v, (int, float)):
                return literal(v)
            raise self.fail(f"the text {_show(v)} used as a number", x.value)
        if x.kind == "bool":
            return f"number({x.xp})"
        if x.kind == "num":
            return x.xp
        if x.kind == "field":
            cat = x.info.category
            if cat == "num":
                return f"coalesce({x.xp}, {blank})" if blank == "0" else f"number({x.xp})"
            if cat == "bool":
                if blank == "0":
                    return f"number({x.xp} = '{YES}')"
                return f"if({_blank(x)}, number(''), number({x.xp} = '{YES}'))"
        raise self.fail("this value is not a number", None)


def _op_var(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    return t.var(args if len(args) != 1 else args[0], env)


def _op_eq(strict: bool, negate: bool):
    def op(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
        if len(args) != 2:
            raise t.fail("a comparison needs two arguments", rule)
        a, b = (t.value(x, env) for x in args)
        eq = t.equal(a, b, strict, rule)
        return _X("bool", f"not({eq})" if negate else eq)

    return op


def _op_rel(op: str):
    def handler(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
        values = [t.value(x, env) for x in args]
        if len(values) == 3 and op in ("<", "<="):
            first = t.relational(op, values[0], values[1], rule)
            second = t.relational(op, values[1], values[2], rule)
            return _X("bool", f"({first} and {second})")
        if len(values) != 2:
            raise t.fail(f"'{op}' needs two arguments", rule)
        return _X("bool", t.relational(op, values[0], values[1], rule))

    return handler


def _op_in(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    if len(args) != 2:
        raise t.fail("'in' needs two arguments", rule)
    needle, hay = args
    if isinstance(hay, list):
        a = t.value(needle, env)
        if not hay:
            return _X("bool", "false()")
        parts = [t.equal(a, _X("lit", value=v), True, rule) for v in hay]
        return _X("bool", "(" + " or ".join(parts) + ")" if len(parts) > 1 else parts[0])
    h = t.value(hay, env)
    a = t.value(needle, env)
    if h.kind == "lit" and isinstance(h.value, str):
        if a.kind == "field" and a.info.category == "str":
            return _X("bool", f"({_present(a)} and contains({literal(h.value)}, {a.xp}))")
        if a.kind == "str":
            return _X("bool", f"contains({literal(h.value)}, {a.xp})")
    if h.kind == "field" and a.kind == "lit" and a.value not in ("", None):
        if h.info.type == "select_multiple":
            kind = h.info.choice_kind
            if (kind == "int") != (type(a.value) is int):
                return _X("bool", "false()")
            return _X("bool", f"selected({h.xp}, {literal(js_to_string(a.value))})")
        if h.info.category == "str" and isinstance(a.value, str):
            return _X("bool", f"contains({h.xp}, {literal(a.value)})")
    raise t.fail("this 'in' has no XPath translation", rule)


def _op_arith(op: str):
    xp_op = {"+": "+", "-": "-", "*": "*", "/": "div", "%": "mod"}[op]
    parse_float = op in ("+", "*")

    def handler(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
        values = [t.value(x, env) for x in args]
        for v in values:
            if v.kind == "lit" and isinstance(v.value, str):
                raise t.fail("text used as a number", rule)
            if v.kind == "field" and v.info.category not in ("num", "bool"):
                raise t.fail(f"a {v.info.type} answer used as a number", rule)
            if v.kind in ("str", "date", "nodes"):
                raise t.fail("a non-number used in arithmetic", rule)
            if parse_float and (
                (v.kind == "field" and v.info.category == "bool")
                or v.kind == "bool"
                or (v.kind == "lit" and (v.value is None or isinstance(v.value, bool)))
            ):
                # parseFloat(true) and parseFloat(null) are NaN
                raise t.fail("a boolean or null in + or * (NaN in JavaScript)", rule)
        nums = [t._number(v, "nan" if parse_float else "0") for v in values]
        if not nums:
            raise t.fail(f"'{op}' needs arguments", rule)
        if len(nums) == 1:
            if op == "-":
                return _X("num", f"(-{nums[0]})")
            if op == "+":
                return _X("num", f"number({nums[0]})")
            raise t.fail(f"'{op}' needs two arguments", rule)
        if op in ("-", "/", "%") and len(nums) != 2:
            raise t.fail(f"'{op}' takes two arguments", rule)
        return _X("num", "(" + f" {xp_op} ".join(nums) + ")")

    return handler


def _op_minmax(op: str):
    def handler(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
        if not args:
            raise t.fail(f"'{op}' of nothing is Infinity", rule)
        nums = [t._number(t.value(x, env)) for x in args]
        if len(nums) == 1:
            return _X("num", nums[0])
        cmp = "<" if op == "min" else ">"
        expr = nums[0]
        for n in nums[1:]:
            # Math.min/max give NaN when any argument is NaN
            nan = f"{expr} != {expr} or {n} != {n}"
            expr = f"if({nan}, number(''), if({expr} {cmp}= {n}, {expr}, {n}))"
        return _X("num", expr)

    return handler


def _op_cat(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    parts = []
    for a in args:
        x = t.value(a, env)
        if x.kind == "lit":
            if isinstance(x.value, (list, dict)):
                raise t.fail("cat of a list", rule)
            parts.append(literal(js_to_string(x.value)))
        elif x.kind in ("str", "num"):
            parts.append(x.xp)
        elif x.kind == "date":
            parts.append("format-date(today(), '%Y-%m-%d')")
        elif x.kind == "field" and x.info.type in ("text", "date", "integer"):
            parts.append(x.xp)
        elif x.kind == "field" and x.info.type == "select_one":
            parts.append(x.xp)
        else:
            raise t.fail("cat of this value has no XPath translation", a)
    if not parts:
        return _X("lit", value="")
    if len(parts) == 1:
        return _X("str", f"string({parts[0]})")
    return _X("str", "concat(" + ", ".join(parts) + ")")


def _op_substr(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    if len(args) not in (2, 3) or not all(type(a) is int for a in args[1:]):
        raise t.fail("substr needs a constant start and length", rule)
    s = t.value(args[0], env)
    if s.kind == "field" and s.info.category == "str":
        src = s.xp
    elif s.kind == "str":
        src = s.xp
    else:
        raise t.fail("substr of a non-text value", rule)
    start = args[1]
    if start < 0:
        raise t.fail("substr with a negative start has no XPath translation", rule)
    if len(args) == 2:
        return _X("str", f"substr({src}, {start})")
    length = args[2]
    end = f"{start + length}" if length >= 0 else f"string-length({src}) - {-length}"
    return _X("str", f"substr({src}, {start}, {end})")


def _op_if(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    return t._if(args, env, truth=False)


def _op_reduce(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    if len(args) != 3 or args[2] != 0:
        raise t.fail("only reduce(list, accumulator + 1 or + current.x, 0) is translated", rule)
    base = t.nodes(args[0], env)
    body = t.op_of(args[1])
    if body is None or body[0] != "+" or len(body[1]) != 2:
        raise t.fail("only a counting or summing reduce is translated", rule)
    terms = body[1]
    acc = {"var": "accumulator"}
    if acc not in terms:
        raise t.fail("the reduce body must add to the accumulator", rule)
    other = terms[1] if terms[0] == acc else terms[0]
    if other == 1:
        return _X("num", f"count({base.xp})")
    elem_env = _Env(env.at, env.context, element=base.info, reduce_current="current")
    x = t.value(other, elem_env)
    if x.kind != "field" or x.info.category != "num":
        raise t.fail("only a sum of a number question is translated", rule)
    # parseFloat(null) is NaN in JavaScript; sum() of a blank node is NaN too
    # (and sum() of no node is not 0 in every engine: ODK Web Forms gives NaN)
    return _X("num", f"if(count({base.xp}) = 0, 0, sum({base.xp}/{x.xp}))")


def _op_iter(op: str):
    def handler(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
        if len(args) != 2:
            raise t.fail(f"'{op}' needs [list, rule]", rule)
        base = t.nodes(args[0], env)
        pred = t.truth(args[1], _Env(env.at, env.context, element=base.info))
        if op == "some":
            return _X("bool", f"count({base.xp}[{pred}]) > 0")
        if op == "none":
            # json-logic-js 2.0.5: a blank list is an empty set, of which none holds
            return _X("bool", f"count({base.xp}[{pred}]) = 0")
        return _X("bool", f"(count({base.xp}) > 0 and count({base.xp}[not({pred})]) = 0)")

    return handler


def _op_filter(t: _Translator, args: list, env: _Env, rule: Any) -> _X:
    return t.nodes({"filter": args}, env)


_VALUE_OPS = {
    "var": _op_var,
    "==": _op_eq(False, False),
    "===": _op_eq(True, False),
    "!=": _op_eq(False, True),
    "!==": _op_eq(True, True),
    "<": _op_rel("<"),
    "<=": _op_rel("<="),
    ">": _op_rel(">"),
    ">=": _op_rel(">="),
    "in": _op_in,
    "+": _op_arith("+"),
    "-": _op_arith("-"),
    "*": _op_arith("*"),
    "/": _op_arith("/"),
    "%": _op_arith("%"),
    "min": _op_minmax("min"),
    "max": _op_minmax("max"),
    "cat": _op_cat,
    "substr": _op_substr,
    "if": _op_if,
    "?:": _op_if,
    "reduce": _op_reduce,
    "some": _op_iter("some"),
    "all": _op_iter("all"),
    "none": _op_iter("none"),
    "filter": _op_filter,
}


def to_xpath(
    rule: Any,
    scope: FormScope | dict,
    at: str | tuple[str, ...],
    *,
    constraint: bool = False,
    context: str | tuple[str, ...] | None = None,
    value: str | None = None,
) -> str:
    """The XPath boolean equivalent to the truth of ``rule``.

    ``scope``: a ``FormScope`` (or the definition); ``at``: the dotted path of the question the
    rule belongs to (``anggota.hamil``); ``constraint``: the rule is that question's constraint,
    so ``{"var": "value"}`` is its answer. ``context``: the node the XPath will be evaluated at,
    when not the question itself (a repeat's constraint set on one of its questions);
    ``value``: the XPath of the constrained answer, ``.`` by default (``current()/..``-relative
    paths are used for ``_item``).
    """
    if isinstance(scope, dict):
        scope = FormScope(scope)
    at_t = tuple(at.split(".")) if isinstance(at, str) else tuple(at)
    ctx = (
        at_t
        if context is None
        else (tuple(context.split(".")) if isinstance(context, str) else tuple(context))
    )
    t = _Translator(scope, rule)
    value_x = None
    if constraint:
        info = scope.find(at_t)
        if value is None:
            if info.type in ("repeat", "group") or ctx != at_t:
                value = scope.absolute(at_t)
            else:
                value = "."
        value_x = _X("nodes" if info.type == "repeat" else "field", value, info=info)
    return t.truth(rule, _Env(at_t, ctx, value=value_x))


# ---------------------------------------------------------------------------
# The reverse: XPath (the subset to_xpath writes) -> JsonLogic, for XLSForm import
# ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<ref>\$\{[a-z_][a-z0-9_]*\})"
    r"|(?P<op><=|>=|!=|=|<|>|\(|\)|\[|\]|,|\+|-|\*|//|/|\.\.|\.|\|)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*(?:\(\))?|[A-Za-z_][A-Za-z0-9_\-]*))"
)
_BINARY = [("or",), ("and",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "div", "mod")]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise XPathError(f"cannot read the XPath {text!r} at {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "name" and value.endswith("()"):
            out += [("name", value[:-2]), ("op", "("), ("op", ")")]
        else:
            out.append((kind, value))
    return out


class _Parser:
    """A small XPath 1.0 parser: ``(kind, ...)`` tuples for the operators to_xpath writes."""

    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise XPathError(f"cannot read the XPath {self.text!r}: expected {value or 'more'}")
        self.i += 1
        return tok

    def parse(self) -> tuple:
        node = self.binary(0)
        if self.peek() is not None:
            raise XPathError(f"cannot read the XPath {self.text!r}: unexpected {self.peek()[1]!r}")
        return node

    def binary(self, level: int) -> tuple:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while (
            (tok := self.peek()) is not None
            and tok[1] in _BINARY[level]
            and (tok[0] == "op" or tok[1] in ("or", "and", "div", "mod"))
        ):
            self.take()
            right = self.binary(level + 1)
            left = ("bin", tok[1], left, right)
        return left

    def unary(self) -> tuple:
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "str":
            return ("lit", value[1:-1])
        if kind == "ref":
            return self.steps(("ref", value[2:-1]))
        if (kind, value) == ("op", "("):
            inner = self.binary(0)
            self.take(")")
            return ("paren", inner)
        if kind == "name" and self.peek() == ("op", "("):
            self.take("(")
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.binary(0))
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.binary(0))
            self.take(")")
            return self.steps(("call", value, args))
        if kind == "op" and value in ("/", ".", ".."):
            self.i -= 1
            return self.path()
        if kind == "name":
            self.i -= 1
            return self.path()
        raise XPathError(f"cannot read the XPath {self.text!r} at {value!r}")

    def path(self) -> tuple:
        steps: list = []
        absolute = False
        if self.peek() == ("op", "/"):
            self.take()
            absolute = True
        while True:
            kind, value = self.take()
            if kind not in ("name", "op") or (kind == "op" and value not in (".", "..")):
                raise XPathError(f"cannot read the XPath {self.text!r} at {value!r}")
            steps.append(value)
            if self.peek() == ("op", "["):
                self.take()
                pred = self.binary(0)
                self.take("]")
                steps.append(("pred", pred))
            if self.peek() != ("op", "/"):
                break
            self.take()
        return ("path", absolute, steps)

    def steps(self, base: tuple) -> tuple:
        while self.peek() == ("op", "["):
            self.take()
            pred = self.binary(0)
            self.take("]")
            base = ("filtered", base, pred)
        if self.peek() == ("op", "/"):
            self.take()
            rest = self.path()
            return ("join", base, rest)
        return base


class _Reverse:
    def __init__(self, scope: FormScope, text: str, at: tuple, constraint: bool):
        self.scope = scope
        self.text = text
        self.at = at
        self.constraint = constraint

    def fail(self, why: str) -> XPathError:
        return XPathError(f"cannot translate the XPath {self.text!r} to JsonLogic: {why}")

    # -- references -------------------------------------------------------

    def ref(self, node: tuple, element: FieldInfo | None = None) -> tuple[str, FieldInfo | None]:
        """``(var path, field)`` of a path expression."""
        if node[0] == "ref":
            found = self._by_name(node[1])
            return self._var_of(found.path), found
        if node[0] != "path":
            raise self.fail("a reference was expected")
        _, absolute, steps = node
        if any(isinstance(s, tuple) for s in steps):
            raise self.fail("a predicate inside a path")
        if element is not None:
            info = element
            for name in steps:
                info = info.children.get(name) if isinstance(name, str) else None
                if info is None:
                    raise self.fail(f"no question {'/'.join(steps)} in the repeat's entries")
            return ".".join(steps), info
        if absolute:
            if not steps or steps[0] != self.scope.root:
                raise self.fail(f"an absolute path outside /{self.scope.root}")
            path = tuple(steps[1:])
        else:
            if steps == ["."]:
                if not self.constraint:
                    raise self.fail("'.' outside a constraint")
                return "value", self.scope.find(self.at)
            path = self.at
            for s in steps:
                if s == "..":
                    path = path[:-1]
                elif s != ".":
                    path = path + (s,)
        return self._var_of(path), self.scope.find(path)

    def _by_name(self, name: str) -> FieldInfo:
        found: list[FieldInfo] = []

        def walk(children: dict) -> None:
            for f in children.values():
                if f.name == name:
                    found.append(f)
                walk(f.children)

        walk(self.scope.fields)
        if len(found) != 1:
            raise self.fail(f"${{{name}}} names {len(found)} questions")
        return found[0]

    def _var_of(self, path: tuple) -> str:
        repeats = self.scope.repeats_around(self.at)
        for depth, rep in enumerate(repeats[:2]):
            if path[: len(rep)] == rep and len(path) > len(rep):
                head = "_item" if depth == 0 else "_parent"
                return ".".join((head,) + path[len(rep) :])
        return ".".join(path)

    # -- expressions ------------------------------------------------------

    def truth(self, node: tuple, element: FieldInfo | None = None) -> Any:
        while node[0] == "paren":
            node = node[1]
        kind = node[0]
        if kind == "bin" and node[1] in ("and", "or"):
            operands: list = []

            def chain(n: tuple) -> None:
                if n[0] == "bin" and n[1] == node[1]:
                    chain(n[2])
                    chain(n[3])
                else:
                    operands.append(n)

            chain(node)
            return self._combine(node[1], [self.truth(o, element) for o in operands])
        if kind == "call" and node[1] == "not" and len(node[2]) == 1:
            inner = self.truth(node[2][0], element)
            if isinstance(inner, dict) and list(inner) == ["==="]:
                return {"!==": inner["==="]}
            if isinstance(inner, dict) and list(inner) == ["!!"]:
                return {"!": inner["!!"]}
            return {"!": inner}
        if kind == "call" and node[1] in ("true", "false") and not node[2]:
            return node[1] == "true"
        if kind == "call" and node[1] == "if" and len(node[2]) == 3:
            return {"if": [self.truth(a, element) for a in node[2]]}
        if kind == "call" and node[1] == "selected" and len(node[2]) == 2:
            var, info = self.ref(node[2][0], element)
            code = node[2][1]
            if code[0] != "lit":
                raise self.fail("selected() of a computed code")
            value = int(code[1]) if info.choice_kind == "int" else code[1]
            return {"in": [value, {"var": var}]}
        if kind == "call" and node[1] == "contains" and len(node[2]) == 2:
            hay, needle = node[2]
            if hay[0] == "lit":
                return {"in": [self.value(needle, element), hay[1]]}
            return {"in": [self.value(needle, element), self.value(hay, element)]}
        if kind == "bin" and node[1] in ("=", "!=", "<", "<=", ">", ">="):
            return self.compare(node, element)
        raise self.fail(f"no JsonLogic for {self._show(node)}")

    def _combine(self, op: str, parts: list) -> Any:
        # the guards to_xpath writes around a truthy number or an 'in' on text
        if op == "and" and len(parts) == 2:
            a, b = parts
            missing = a.get("!", {}).get("missing") if isinstance(a, dict) else None
            if isinstance(missing, list) and len(missing) == 1:
                if b == {"!==": [{"var": missing[0]}, 0]}:
                    return {"var": missing[0]}
            if isinstance(a, dict) and list(a) == ["!!"]:
                if isinstance(b, dict) and list(b) == ["in"] and b["in"][0] == a["!!"]:
                    return b
        if op == "or" and len(parts) == 2 and isinstance(parts[0], dict):
            a, b = parts
            if list(a) == ["==="] and b == {
                "and": [
                    {"missing": [x["var"]]} for x in a["==="] if isinstance(x, dict) and "var" in x
                ]
            }:
                return a
        if (
            op == "or"
            and all(
                isinstance(p, dict)
                and list(p) == ["==="]
                and p["==="][0] == parts[0]["==="][0]
                and not isinstance(p["==="][1], (dict, list, bool))
                for p in parts
            )
            and len(parts) > 1
        ):
            return {"in": [parts[0]["==="][0], [p["==="][1] for p in parts]]}
        if (
            op == "and"
            and len(parts) == 2
            and all(isinstance(p, dict) and list(p)[0] in ("<", "<=") for p in parts)
        ):
            (o1, (a, b)), (o2, (c, d)) = (next(iter(p.items())) for p in parts)
            if o1 == o2 and b == c:
                return {o1: [a, b, d]}
        if op == "and" and len(parts) == 2:
            iters = self._iterators(parts)
            if iters is not None:
                return iters
        return {op: parts}

    def _iterators(self, parts: list) -> Any:
        a, b = parts
        if not (isinstance(a, dict) and list(a) == [">"] and a[">"][1] == 0):
            return None
        count = a[">"][0]
        if not (isinstance(count, dict) and list(count) == ["var"]):
            return None
        if not (isinstance(b, dict) and list(b) == ["==="] and b["==="][1] == 0):
            return None
        red = b["==="][0]
        if not (isinstance(red, dict) and list(red) == ["reduce"]):
            return None
        filt = red["reduce"][0]
        if not (isinstance(filt, dict) and list(filt) == ["filter"]):
            return None
        base, pred = filt["filter"]
        if {"var": base["var"] + ".length"} != count if isinstance(base, dict) else True:
            return None
        # count(R) > 0 and count(R[q]) = 0: every entry fails q, and there is one (``all``;
        # ``none`` alone is count(R[p]) = 0, true over a blank repeat)
        if isinstance(pred, dict) and list(pred) == ["!"]:
            return {"all": [base, pred["!"]]}
        if isinstance(pred, dict) and list(pred) in (["!=="], ["==="]):
            flipped = "===" if list(pred) == ["!=="] else "!=="
            return {"all": [base, {flipped: pred[list(pred)[0]]}]}
        return {"all": [base, {"!": pred}]}

    def compare(self, node: tuple, element: FieldInfo | None) -> Any:
        op, left, right = node[1], node[2], node[3]
        if op in ("=", "!="):
            # string-length(x) > 0 / = 0
            for a, b in ((left, right), (right, left)):
                if a[0] == "call" and a[1] == "string-length" and b == ("lit", 0):
                    var = self.value(a[2][0], element)
                    if op == "=":
                        return {"missing": [var["var"]]} if "var" in var else {"==": [var, None]}
                    return {"!": {"missing": [var["var"]]}}
            lv, rv = self.value(left, element, right), self.value(right, element, left)
            eq = {"===": [lv, rv]}
            return eq if op == "=" else {"!==": [lv, rv]}
        if left[0] == "call" and left[1] == "string-length" and op == ">" and right == ("lit", 0):
            var = self.value(left[2][0], element)
            info = self._info(left[2][0], element)
            if info is not None and info.category in ("num", "bool"):
                return {"!": {"missing": [var["var"]]}}
            return {"!!": var}
        present = self._presence_sum(left, element)
        if present is not None and op == "<" and right[0] == "lit":
            return {"missing_some": [right[1], present]}
        if (
            left[0] == "call"
            and left[1] == "count"
            and right[0] == "lit"
            and op == ">"
            and right[1] == 0
        ):
            arg = left[2][0]
            if arg[0] == "filtered":
                base, pred = self._nodes(arg, element)
                return {"some": [base, pred]}
        return {op: [self.value(left, element), self.value(right, element)]}

    def _info(self, node: tuple, element: FieldInfo | None) -> FieldInfo | None:
        try:
            return self.ref(node, element)[1]
        except XPathError:
            return None

    def _presence_sum(self, node: tuple, element: FieldInfo | None) -> list | None:
        """``if(string-length(a) > 0, 1, 0) + ...`` (missing_some): the names, else None."""
        terms: list = []

        def walk(n: tuple) -> bool:
            while n[0] == "paren":
                n = n[1]
            if n[0] == "bin" and n[1] == "+":
                return walk(n[2]) and walk(n[3])
            if (
                n[0] == "call"
                and n[1] == "if"
                and n[2][1:] == [("lit", 1), ("lit", 0)]
                and n[2][0][0] == "bin"
                and n[2][0][1] == ">"
                and n[2][0][3] == ("lit", 0)
                and n[2][0][2][0] == "call"
                and n[2][0][2][1] == "string-length"
            ):
                var = self.value(n[2][0][2][2][0], element)
                terms.append(var["var"])
                return True
            return False

        return terms if walk(node) and terms else None

    def _nodes(self, node: tuple, element: FieldInfo | None) -> tuple[Any, Any]:
        if node[0] == "filtered":
            base, info = self._repeat(node[1], element)
            pred = self.truth(node[2], info)
            return base, pred
        raise self.fail("a repeat's entries were expected")

    def _repeat(self, node: tuple, element: FieldInfo | None) -> tuple[Any, FieldInfo]:
        if node[0] == "filtered":
            inner, info = self._repeat(node[1], element)
            return {"filter": [inner, self.truth(node[2], info)]}, info
        if node[0] == "path" and node[2] == ["."] and self.constraint:
            return {"var": "value"}, self.scope.find(self.at)
        if node[0] == "path" and any(isinstance(s, tuple) for s in node[2]):
            steps = node[2]
            pred = steps[-1]
            if isinstance(pred, tuple) and all(isinstance(s, str) for s in steps[:-1]):
                base, info = self._repeat(("path", node[1], steps[:-1]), element)
                return {"filter": [base, self.truth(pred[1], info)]}, info
            raise self.fail("a predicate in the middle of a path")
        var, info = self.ref(node, element)
        if info is None or info.type != "repeat":
            raise self.fail(f"{var} is not a repeat")
        return {"var": var}, info

    def value(
        self, node: tuple, element: FieldInfo | None = None, other: tuple | None = None
    ) -> Any:
        while node[0] == "paren":
            node = node[1]
        kind = node[0]
        if kind == "lit":
            v = node[1]
            if isinstance(v, str) and v in (YES, NO) and other is not None and other[0] != "lit":
                try:
                    _, info = self.ref(other, element)
                except XPathError:
                    info = None
                if info is not None and info.type == "boolean":
                    return v == YES
            return v
        if kind == "neg":
            if node[1][0] == "lit" and isinstance(node[1][1], (int, float)):
                return -node[1][1]
            return {"-": [self.value(node[1], element)]}
        if kind in ("path", "ref"):
            if node[0] == "path" and any(isinstance(s, tuple) for s in node[2]):
                raise self.fail("a filtered path used as a value")
            var, info = self.ref(node, element)
            return {"var": var}
        if kind == "filtered":
            raise self.fail("a filtered list used as a value")
        if kind == "bin":
            op = {"div": "/", "mod": "%"}.get(node[1], node[1])
            if op in ("+", "-", "*", "/", "%"):
                parts = [self.value(node[2], element), self.value(node[3], element)]
                if op in ("+", "*"):
                    flat: list = []
                    for p in parts:
                        flat += p[op] if isinstance(p, dict) and list(p) == [op] else [p]
                    parts = flat
                return {op: parts}
            return self.truth(node, element)
        if kind == "call":
            name, args = node[1], node[2]
            if name in ("coalesce",) and len(args) == 2 and args[1] == ("lit", 0):
                return self.value(args[0], element)
            if name == "number" and len(args) == 1:
                return self.value(args[0], element)
            if name == "today" and not args:
                return {"var": "_visit.date"}
            if name == "decimal-date-time" and len(args) == 1:
                return self.value(args[0], element)
            if name == "format-date" and args and args[0] == ("call", "today", []):
                return {"var": "_visit.date"}
            if name == "selected-at" and len(args) == 2 and args[1][0] == "lit":
                part = {0: "lat", 1: "lon", 2: "altitude_m", 3: "accuracy_m"}.get(args[1][1])
                var = self.value(args[0], element)
                if part is None or not isinstance(var, dict) or "var" not in var:
                    raise self.fail("selected-at() of this value")
                return {"var": f"{var['var']}.{part}"}
            if name == "count" and len(args) == 1:
                arg = args[0]
                if arg[0] == "filtered" or (
                    arg[0] == "path" and any(isinstance(s, tuple) for s in arg[2])
                ):
                    base, _info = self._repeat(arg, element)
                    return {"reduce": [base, {"+": [{"var": "accumulator"}, 1]}, 0]}
                var, info = self.ref(arg, element)
                return {"var": f"{var}.length"}
            if name == "if" and len(args) == 3:
                first = args[0]
                if (
                    first[0] == "bin"
                    and first[1] == "="
                    and first[2][0] == "call"
                    and first[2][1] == "count"
                    and first[3] == ("lit", 0)
                    and args[1] == ("lit", 0)
                    and args[2][0] == "call"
                    and args[2][1] == "sum"
                ):
                    return self._sum(args[2], element)
                inner = args[2]
                if (
                    args[1] == ("call", "number", [("lit", "")])
                    and inner[0] == "call"
                    and inner[1] == "if"
                    and inner[2][0][0] == "bin"
                    and inner[2][0][1] in ("<=", ">=")
                    and (inner[2][0][2], inner[2][0][3]) == (inner[2][1], inner[2][2])
                ):
                    op = "min" if inner[2][0][1] == "<=" else "max"
                    return {
                        op: [self.value(inner[2][1], element), self.value(inner[2][2], element)]
                    }
                return {
                    "if": [
                        self.truth(args[0], element),
                        self.value(args[1], element),
                        self.value(args[2], element),
                    ]
                }
            if name == "sum" and len(args) == 1:
                return self._sum(node, element)
            if name == "concat":
                return {"cat": [self.value(a, element) for a in args]}
            if name == "string" and len(args) == 1:
                return {"cat": [self.value(args[0], element)]}
            if name == "substr" and len(args) in (2, 3):
                s = self.value(args[0], element)
                start = args[1]
                if start[0] != "lit":
                    raise self.fail("substr() with a computed start")
                if len(args) == 2:
                    return {"substr": [s, start[1]]}
                end = args[2]
                if end[0] == "lit":
                    return {"substr": [s, start[1], end[1] - start[1]]}
                raise self.fail("substr() with a computed end")
            if name in ("not", "true", "false", "selected", "contains"):
                return self.truth(node, element)
        raise self.fail(f"no JsonLogic for {self._show(node)}")

    def _sum(self, node: tuple, element: FieldInfo | None) -> Any:
        arg = node[2][0]
        if arg[0] == "path" and len(arg[2]) >= 2 and all(isinstance(s, str) for s in arg[2]):
            base, info = self._repeat(("path", arg[1], arg[2][:-1]), element)
            field = arg[2][-1]
            return {
                "reduce": [base, {"+": [{"var": "accumulator"}, {"var": f"current.{field}"}]}, 0]
            }
        raise self.fail("sum() of this value")

    @staticmethod
    def _show(node: tuple) -> str:
        return node[1] if len(node) > 1 and isinstance(node[1], str) else node[0]


def to_jsonlogic(
    xpath: str, scope: FormScope | dict, at: str | tuple[str, ...], *, constraint: bool = False
) -> Any:
    """The JsonLogic rule for an XPath of the subset ``to_xpath`` writes (XLSForm import).

    ``at`` is the question the expression belongs to (relative paths and ``_item`` are resolved
    from it); ``${name}`` references (XLSForm) are accepted for names that are unique in the
    form. Anything else raises ``XPathError``.
    """
    if isinstance(scope, dict):
        scope = FormScope(scope)
    at_t = tuple(at.split(".")) if isinstance(at, str) else tuple(at)
    node = _Parser(xpath).parse()
    return _Reverse(scope, xpath, at_t, constraint).truth(node)
