"""A JsonLogic evaluator that behaves like json-logic-js (2.x).

Phones evaluate form rules offline with json-logic-js, so the server must reach
the very same verdict: JavaScript truthiness, loose ``==``, numeric coercion of
strings, ``parseFloat`` in ``+``/``*``, lazily evaluated ``if``/``and``/``or``
and iterators, unknown operators failing only when they are reached.

Rules are compiled once into nested Python closures (``compile_rule``) and the
compiled form is cached by the canonical JSON of the rule, because the form
engine evaluates the same few rules thousands of times per second.

Python stand-ins for JavaScript values: ``None`` is ``null``, ``UNDEFINED`` is
``undefined`` (only produced internally, e.g. by ``{"and": []}``; ``apply``
returns it as ``None``), ``float("nan")`` is ``NaN``, a ``dict`` is an object.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "JS_OPERATORS",
    "UNDEFINED",
    "JsonLogicError",
    "apply",
    "compile_rule",
    "is_logic",
    "js_loose_eq",
    "js_strict_eq",
    "js_to_number",
    "js_to_string",
    "operators_in",
    "truthy",
]

Compiled = Callable[[Any], Any]


class JsonLogicError(Exception):
    """A rule could not be evaluated (json-logic-js would throw here too)."""


class _Undefined:
    """JavaScript ``undefined``: distinct from ``null`` for ``===`` and ``ToNumber``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()
NAN = float("nan")
INF = float("inf")

# Operators json-logic-js ships (``method`` and dotted custom operators are left out
# on purpose: they call arbitrary methods and are not portable).
JS_OPERATORS = frozenset(
    {
        "==",
        "===",
        "!=",
        "!==",
        ">",
        ">=",
        "<",
        "<=",
        "!!",
        "!",
        "%",
        "log",
        "in",
        "cat",
        "substr",
        "+",
        "*",
        "-",
        "/",
        "min",
        "max",
        "merge",
        "var",
        "missing",
        "missing_some",
        "if",
        "?:",
        "and",
        "or",
        "filter",
        "map",
        "reduce",
        "all",
        "none",
        "some",
    }
)

# ---------------------------------------------------------------------------
# JavaScript value semantics
# ---------------------------------------------------------------------------

_JS_WS = " \t\n\r\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501
_DECIMAL_RE = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\Z")
_PARSEFLOAT_RE = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_RADIX = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}


def truthy(value: Any) -> bool:
    """JsonLogic truthiness: JavaScript's, except that an empty array is falsy."""
    if value is True:
        return True
    if value is False or value is None:
        return False
    t = type(value)
    if t is dict:
        return True
    if t is float:
        return value == value and value != 0.0
    if t is _Undefined:
        return False
    return bool(value)


def _js_truthy(value: Any) -> bool:
    """Plain JavaScript truthiness (``[]`` is truthy), used where json-logic-js uses ``!b``."""
    if type(value) is list:
        return True
    return truthy(value)


def _str_to_number(s: str) -> float | int:
    s = s.strip(_JS_WS)
    if not s:
        return 0
    if _DECIMAL_RE.match(s):
        return float(s)
    radix = _RADIX.get(s[:2])
    if radix is not None:
        try:
            return int(s[2:], radix)
        except ValueError:
            return NAN
    return NAN


def js_to_number(value: Any) -> int | float:
    """ECMAScript ``ToNumber`` (``Number(x)``)."""
    t = type(value)
    if t is int or t is float:
        return value
    if t is bool:
        return 1 if value else 0
    if value is None:
        return 0
    if t is str:
        return _str_to_number(value)
    if t is list:
        return _str_to_number(js_to_string(value))
    return NAN  # objects ("[object Object]") and undefined


def _num_to_string(f: float) -> str:
    """ECMAScript ``Number::toString`` for a float (shortest round-trip digits)."""
    if f != f:
        return "NaN"
    if f == INF:
        return "Infinity"
    if f == -INF:
        return "-Infinity"
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    r = repr(abs(f))
    mant, _, exp = r.partition("e")
    exp_i = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    raw = ip + fp
    stripped = raw.lstrip("0")
    n = len(ip) + exp_i - (len(raw) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits + "e" + es if k == 1 else digits[0] + "." + digits[1:] + "e" + es
    return sign + out


def js_to_string(value: Any) -> str:
    """ECMAScript ``ToString`` (``String(x)``); arrays join with "," and objects print as such."""
    t = type(value)
    if t is str:
        return value
    if t is int:
        if -9007199254740992 <= value <= 9007199254740992:
            return str(value)
        return _num_to_string(float(value))
    if t is float:
        if value.is_integer() and -1e21 < value < 1e21:
            return str(int(value))
        return _num_to_string(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is list:
        return ",".join("" if x is None or x is UNDEFINED else js_to_string(x) for x in value)
    if t is dict:
        return "[object Object]"
    if value is UNDEFINED:
        return "undefined"
    return str(value)


def _parse_float(value: Any) -> float | int:
    """ECMAScript ``parseFloat``: the longest numeric prefix of ``String(x)``, else NaN."""
    t = type(value)
    if t is int or t is float:
        return value
    m = _PARSEFLOAT_RE.match(js_to_string(value).lstrip(_JS_WS))
    if m is None:
        return NAN
    return float(m.group())


def _to_primitive(value: Any) -> Any:
    t = type(value)
    if t is list:
        return js_to_string(value)
    if t is dict:
        return "[object Object]"
    return value


def _is_num(value: Any) -> bool:
    t = type(value)
    return t is int or t is float


def js_strict_eq(a: Any, b: Any) -> bool:
    """JavaScript ``===``: same type and value; arrays and objects by identity."""
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    if ta is not tb:
        return False
    if ta is str or ta is bool:
        return a == b
    if a is None or ta is _Undefined:
        return True
    return a is b


def js_loose_eq(a: Any, b: Any) -> bool:
    """JavaScript ``==`` (IsLooselyEqual)."""
    while True:
        ta = type(a)
        tb = type(b)
        a_num = ta is int or ta is float
        b_num = tb is int or tb is float
        if a_num and b_num:
            return a == b
        if ta is tb:
            return js_strict_eq(a, b)
        a_nullish = a is None or ta is _Undefined
        b_nullish = b is None or tb is _Undefined
        if a_nullish or b_nullish:
            return a_nullish and b_nullish
        if a_num and tb is str:
            return a == _str_to_number(b)
        if ta is str and b_num:
            return _str_to_number(a) == b
        if ta is bool:
            a = 1 if a else 0
            continue
        if tb is bool:
            b = 1 if b else 0
            continue
        a_obj = ta is list or ta is dict
        b_obj = tb is list or tb is dict
        if a_obj and not b_obj:
            a = _to_primitive(a)
            continue
        if b_obj and not a_obj:
            b = _to_primitive(b)
            continue
        return False  # an array against an object: different references


def _js_lt(a: Any, b: Any) -> bool:
    a = _to_primitive(a)
    b = _to_primitive(b)
    if type(a) is str and type(b) is str:
        return a < b
    return js_to_number(a) < js_to_number(b)


def _js_le(a: Any, b: Any) -> bool:
    a = _to_primitive(a)
    b = _to_primitive(b)
    if type(a) is str and type(b) is str:
        return a <= b
    return js_to_number(a) <= js_to_number(b)


def _to_integer_or_inf(value: Any) -> float | int:
    n = js_to_number(value)
    if n != n:
        return 0
    if n in (INF, -INF):
        return n
    return int(n)


def _js_substr(s: str, start: Any, length: Any) -> str:
    size = len(s)
    st = 0 if start is UNDEFINED else _to_integer_or_inf(start)
    if st == -INF:
        st = 0
    elif st < 0:
        st = max(size + st, 0)
    else:
        st = min(st, size)
    ln = size if length is UNDEFINED else _to_integer_or_inf(length)
    end = min(st + min(max(ln, 0), size), size)
    if end <= st:
        return ""
    return s[int(st) : int(end)]


def _js_get(data: Any, key: str) -> Any:
    """``data[key]`` for JSON values; ``UNDEFINED`` when there is no such property."""
    t = type(data)
    if t is dict:
        return data.get(key, UNDEFINED)
    if t is list or t is str:
        if key == "length":
            return len(data)
        if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
            i = int(key)
            if i < len(data):
                return data[i]
    return UNDEFINED


def _js_var(data: Any, a: Any = UNDEFINED, b: Any = UNDEFINED) -> Any:
    not_found = None if b is UNDEFINED else b
    if a is UNDEFINED or a is None or a == "" and type(a) is str:
        return data
    for prop in js_to_string(a).split("."):
        if data is None or data is UNDEFINED:
            return not_found
        data = _js_get(data, prop)
        if data is UNDEFINED:
            return not_found
    return data


# ---------------------------------------------------------------------------
# Operators evaluated on already-evaluated arguments
# ---------------------------------------------------------------------------


def _arg(args: list, i: int) -> Any:
    return args[i] if i < len(args) else UNDEFINED


def _op_eq(data: Any, args: list) -> bool:
    return js_loose_eq(_arg(args, 0), _arg(args, 1))


def _op_strict_eq(data: Any, args: list) -> bool:
    return js_strict_eq(_arg(args, 0), _arg(args, 1))


def _op_ne(data: Any, args: list) -> bool:
    return not js_loose_eq(_arg(args, 0), _arg(args, 1))


def _op_strict_ne(data: Any, args: list) -> bool:
    return not js_strict_eq(_arg(args, 0), _arg(args, 1))


def _op_gt(data: Any, args: list) -> bool:
    return _js_lt(_arg(args, 1), _arg(args, 0))


def _op_ge(data: Any, args: list) -> bool:
    return _js_le(_arg(args, 1), _arg(args, 0))


def _op_lt(data: Any, args: list) -> bool:
    a, b, c = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    if c is UNDEFINED:
        return _js_lt(a, b)
    return _js_lt(a, b) and _js_lt(b, c)


def _op_le(data: Any, args: list) -> bool:
    a, b, c = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    if c is UNDEFINED:
        return _js_le(a, b)
    return _js_le(a, b) and _js_le(b, c)


def _op_not_not(data: Any, args: list) -> bool:
    return truthy(_arg(args, 0))


def _op_not(data: Any, args: list) -> bool:
    return not truthy(_arg(args, 0))


def _op_mod(data: Any, args: list) -> Any:
    a = js_to_number(_arg(args, 0))
    b = js_to_number(_arg(args, 1))
    if type(a) is int and type(b) is int:
        if b == 0:
            return NAN
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    a = float(a)
    b = float(b)
    if a != a or b != b or b == 0 or a in (INF, -INF):
        return NAN
    if b in (INF, -INF) or a == 0:
        return a
    return math.fmod(a, b)


def _op_log(data: Any, args: list) -> Any:
    return _arg(args, 0)


def _op_in(data: Any, args: list) -> bool:
    a, b = _arg(args, 0), _arg(args, 1)
    if not _js_truthy(b):
        return False
    tb = type(b)
    if tb is str:
        return js_to_string(a) in b
    if tb is list:
        for x in b:
            if js_strict_eq(a, x):
                return True
        return False
    return False  # numbers, booleans and objects have no indexOf


def _op_cat(data: Any, args: list) -> str:
    return "".join("" if x is None or x is UNDEFINED else js_to_string(x) for x in args)


def _op_substr(data: Any, args: list) -> str:
    source, start, end = _arg(args, 0), _arg(args, 1), _arg(args, 2)
    s = js_to_string(source)
    if end is not UNDEFINED and _js_lt(end, 0):
        temp = _js_substr(s, start, UNDEFINED)
        return _js_substr(temp, 0, len(temp) + js_to_number(end))
    return _js_substr(s, start, end)


def _op_add(data: Any, args: list) -> Any:
    total: Any = 0
    for x in args:
        total = total + _parse_float(x)
    return total


def _op_mul(data: Any, args: list) -> Any:
    if not args:
        raise JsonLogicError("'*' needs at least one argument (Reduce of empty array)")
    if len(args) == 1:
        return args[0]  # Array.prototype.reduce without an initial value
    total = _parse_float(args[0])
    for x in args[1:]:
        total = _mul(total, _parse_float(x))
    return total


def _mul(a: Any, b: Any) -> Any:
    try:
        return a * b
    except OverflowError:  # pragma: no cover - int * float beyond double range
        return math.copysign(INF, a) * math.copysign(1.0, b)


def _op_sub(data: Any, args: list) -> Any:
    a, b = _arg(args, 0), _arg(args, 1)
    if b is UNDEFINED:
        n = js_to_number(a)
        return -n if n != 0 else 0
    return js_to_number(a) - js_to_number(b)


def _op_div(data: Any, args: list) -> Any:
    a = js_to_number(_arg(args, 0))
    b = js_to_number(_arg(args, 1))
    if b == 0:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)
    if a != a or b != b:
        return NAN
    try:
        return a / b
    except OverflowError:  # pragma: no cover - huge ints
        return float(a) / float(b)


def _op_min(data: Any, args: list) -> Any:
    best: Any = INF
    for x in args:
        n = js_to_number(x)
        if n != n:
            return NAN
        if n < best:
            best = n
    return best


def _op_max(data: Any, args: list) -> Any:
    best: Any = -INF
    for x in args:
        n = js_to_number(x)
        if n != n:
            return NAN
        if n > best:
            best = n
    return best


def _op_merge(data: Any, args: list) -> list:
    out: list = []
    for x in args:
        if type(x) is list:
            out.extend(x)
        else:
            out.append(x)
    return out


def _op_var(data: Any, args: list) -> Any:
    return _js_var(data, _arg(args, 0), _arg(args, 1))


def _op_missing(data: Any, args: list) -> list:
    keys = args[0] if args and type(args[0]) is list else args
    missing = []
    for key in keys:
        value = _js_var(data, *(key if type(key) is list else [key])[:2])
        if value is None or (type(value) is str and value == "") or value is UNDEFINED:
            missing.append(key)
    return missing


def _op_missing_some(data: Any, args: list) -> list:
    need, options = _arg(args, 0), _arg(args, 1)
    if options is None or options is UNDEFINED:
        raise JsonLogicError("missing_some needs a list of keys")
    opts = options if type(options) is list else [options]
    are_missing = _op_missing(data, opts)
    if _js_le(need, len(opts) - len(are_missing)):
        return []
    return are_missing


_PLAIN_OPS: dict[str, Callable[[Any, list], Any]] = {
    "==": _op_eq,
    "===": _op_strict_eq,
    "!=": _op_ne,
    "!==": _op_strict_ne,
    ">": _op_gt,
    ">=": _op_ge,
    "<": _op_lt,
    "<=": _op_le,
    "!!": _op_not_not,
    "!": _op_not,
    "%": _op_mod,
    "log": _op_log,
    "in": _op_in,
    "cat": _op_cat,
    "substr": _op_substr,
    "+": _op_add,
    "*": _op_mul,
    "-": _op_sub,
    "/": _op_div,
    "min": _op_min,
    "max": _op_max,
    "merge": _op_merge,
    "var": _op_var,
    "missing": _op_missing,
    "missing_some": _op_missing_some,
}

# ---------------------------------------------------------------------------
# Compiler
# ---------------------------------------------------------------------------


def is_logic(rule: Any) -> bool:
    """json-logic-js ``is_logic``: an object with exactly one key."""
    return type(rule) is dict and len(rule) == 1


def _const(value: Any) -> Compiled:
    return lambda data: value


def _compile(rule: Any) -> Compiled:
    t = type(rule)
    if t is list:
        parts = [_compile(x) for x in rule]
        return lambda data: [f(data) for f in parts]
    if t is not dict or len(rule) != 1:
        return _const(rule)
    ((op, values),) = rule.items()
    if type(values) is not list:
        values = [values]
    special = _SPECIAL.get(op)
    if special is not None:
        return special(values)
    fn = _PLAIN_OPS.get(op)
    if fn is None:
        message = f"Unrecognized operation {op}"

        def unknown(data: Any) -> Any:
            raise JsonLogicError(message)

        return unknown
    fast = _FAST.get(op)
    if fast is not None:
        compiled = fast(values)
        if compiled is not None:
            return compiled
    args = [_compile(v) for v in values]
    n = len(args)
    if n == 0:
        return lambda data: fn(data, [])
    if n == 1:
        (a0,) = args
        return lambda data: fn(data, [a0(data)])
    if n == 2:
        a0, a1 = args
        return lambda data: fn(data, [a0(data), a1(data)])
    return lambda data: fn(data, [f(data) for f in args])


def _arg_or_undefined(values: list, i: int) -> Compiled:
    return _compile(values[i]) if i < len(values) else _const(UNDEFINED)


def _sp_if(values: list) -> Compiled:
    conds = [(_compile(values[i]), _compile(values[i + 1])) for i in range(0, len(values) - 1, 2)]
    fallback = _compile(values[-1]) if len(values) % 2 == 1 else _const(None)

    def f(data: Any) -> Any:
        for cond, then in conds:
            if truthy(cond(data)):
                return then(data)
        return fallback(data)

    return f


def _sp_and(values: list) -> Compiled:
    parts = [_compile(v) for v in values]
    if len(parts) == 2:
        p0, p1 = parts

        def f2(data: Any) -> Any:
            cur = p0(data)
            if not truthy(cur):
                return cur
            return p1(data)

        return f2

    def f(data: Any) -> Any:
        cur = UNDEFINED
        for p in parts:
            cur = p(data)
            if not truthy(cur):
                return cur
        return cur

    return f


def _sp_or(values: list) -> Compiled:
    parts = [_compile(v) for v in values]

    def f(data: Any) -> Any:
        cur = UNDEFINED
        for p in parts:
            cur = p(data)
            if truthy(cur):
                return cur
        return cur

    return f


def _sp_filter(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)

    def f(data: Any) -> Any:
        items = src(data)
        if type(items) is not list:
            return []
        return [x for x in items if truthy(logic(x))]

    return f


def _sp_map(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)

    def f(data: Any) -> Any:
        items = src(data)
        if type(items) is not list:
            return []
        return [logic(x) for x in items]

    return f


def _sp_reduce(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)
    initial = _compile(values[2]) if len(values) > 2 else _const(None)

    def f(data: Any) -> Any:
        items = src(data)
        acc = initial(data)
        if type(items) is not list:
            return acc
        for x in items:
            acc = logic({"current": x, "accumulator": acc})
        return acc

    return f


def _scoped_items(items: Any, op: str) -> Any:
    """The items ``all``/``some``/``none`` loop over; None for anything but a non-empty
    array, as json-logic-js 2.0.5 (``!Array.isArray(scopedData) || !scopedData.length``):
    null, a string or a number is an empty set, never an error."""
    return items if type(items) is list and items else None


def _sp_all(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)

    def f(data: Any) -> Any:
        items = _scoped_items(src(data), "all")
        if items is None:
            return False
        for x in items:
            if not truthy(logic(x)):
                return False
        return True

    return f


def _sp_none(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)

    def f(data: Any) -> Any:
        items = _scoped_items(src(data), "none")
        if items is None:
            return True
        for x in items:
            if truthy(logic(x)):
                return False
        return True

    return f


def _sp_some(values: list) -> Compiled:
    src = _arg_or_undefined(values, 0)
    logic = _arg_or_undefined(values, 1)

    def f(data: Any) -> Any:
        items = _scoped_items(src(data), "some")
        if items is None:
            return False
        for x in items:
            if truthy(logic(x)):
                return True
        return False

    return f


_SPECIAL: dict[str, Callable[[list], Compiled]] = {
    "if": _sp_if,
    "?:": _sp_if,
    "and": _sp_and,
    "or": _sp_or,
    "filter": _sp_filter,
    "map": _sp_map,
    "reduce": _sp_reduce,
    "all": _sp_all,
    "none": _sp_none,
    "some": _sp_some,
}

# --- fast paths for the shapes form rules use most -------------------------


def _is_plain_const(value: Any) -> bool:
    t = type(value)
    return value is None or t is str or t is int or t is float or t is bool


def _fast_var(values: list) -> Compiled | None:
    if not values or type(values[0]) is not str or values[0] == "":
        return None
    if len(values) > 1 and not _is_plain_const(values[1]):
        return None
    default = values[1] if len(values) > 1 else None
    parts = values[0].split(".")
    if len(parts) == 1:
        key = parts[0]

        def var1(data: Any) -> Any:
            if type(data) is dict:
                v = data.get(key, UNDEFINED)
                return default if v is UNDEFINED else v
            return _js_var(data, key, default)

        return var1
    if len(parts) == 2:
        k0, k1 = parts

        def var2(data: Any) -> Any:
            if type(data) is dict:
                inner = data.get(k0, UNDEFINED)
                if type(inner) is dict:
                    v = inner.get(k1, UNDEFINED)
                    return default if v is UNDEFINED else v
            return _js_var(data, k0 + "." + k1, default)

        return var2
    path = values[0]
    return lambda data: _js_var(data, path, default)


def _fast_compare(make: Callable[[Compiled, Compiled], Compiled]) -> Callable:
    def build(values: list) -> Compiled | None:
        if len(values) != 2:
            return None
        return make(_compile(values[0]), _compile(values[1]))

    return build


def _mk_strict_eq(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: js_strict_eq(a(data), b(data))


def _mk_strict_ne(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: not js_strict_eq(a(data), b(data))


def _mk_eq(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: js_loose_eq(a(data), b(data))


def _mk_ne(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: not js_loose_eq(a(data), b(data))


def _num_pair(x: Any, y: Any) -> bool:
    tx = type(x)
    ty = type(y)
    return (tx is int or tx is float) and (ty is int or ty is float)


def _mk_lt(a: Compiled, b: Compiled) -> Compiled:
    def f(data: Any) -> bool:
        x = a(data)
        y = b(data)
        if _num_pair(x, y):
            return x < y
        return _js_lt(x, y)

    return f


def _mk_le(a: Compiled, b: Compiled) -> Compiled:
    def f(data: Any) -> bool:
        x = a(data)
        y = b(data)
        if _num_pair(x, y):
            return x <= y
        return _js_le(x, y)

    return f


def _mk_gt(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: _gt(a(data), b(data))


def _gt(x: Any, y: Any) -> bool:
    if _num_pair(x, y):
        return x > y
    return _js_lt(y, x)


def _ge(x: Any, y: Any) -> bool:
    if _num_pair(x, y):
        return x >= y
    return _js_le(y, x)


def _mk_ge(a: Compiled, b: Compiled) -> Compiled:
    return lambda data: _ge(a(data), b(data))


def _fast_in(values: list) -> Compiled | None:
    if len(values) != 2 or type(values[1]) is not list or not values[1]:
        return None
    consts = values[1]
    if not all(_is_plain_const(c) for c in consts):
        return None
    needle = _compile(values[0])
    ints = frozenset(c for c in consts if type(c) is int or type(c) is float)
    strs = frozenset(c for c in consts if type(c) is str)
    others = [c for c in consts if c is None or type(c) is bool]

    def f(data: Any) -> bool:
        x = needle(data)
        t = type(x)
        if t is int or t is float:
            return x in ints
        if t is str:
            return x in strs
        for c in others:
            if js_strict_eq(x, c):
                return True
        return False

    return f


def _fast_not(values: list) -> Compiled | None:
    if len(values) != 1:
        return None
    a = _compile(values[0])
    return lambda data: not truthy(a(data))


def _fast_not_not(values: list) -> Compiled | None:
    if len(values) != 1:
        return None
    a = _compile(values[0])
    return lambda data: truthy(a(data))


_FAST: dict[str, Callable[[list], Compiled | None]] = {
    "var": _fast_var,
    "===": _fast_compare(_mk_strict_eq),
    "!==": _fast_compare(_mk_strict_ne),
    "==": _fast_compare(_mk_eq),
    "!=": _fast_compare(_mk_ne),
    "<": _fast_compare(_mk_lt),
    "<=": _fast_compare(_mk_le),
    ">": _fast_compare(_mk_gt),
    ">=": _fast_compare(_mk_ge),
    "in": _fast_in,
    "!": _fast_not,
    "!!": _fast_not_not,
}

_CACHE: dict[str, Compiled] = {}
_CACHE_MAX = 4096


def compile_rule(rule: Any) -> Compiled:
    """Compile a rule into ``f(data) -> value``; cached by the rule's canonical JSON."""
    try:
        key = json.dumps(rule, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _compile(rule)
    fn = _CACHE.get(key)
    if fn is None:
        fn = _compile(rule)
        if len(_CACHE) < _CACHE_MAX:
            _CACHE[key] = fn
    return fn


def _finalize(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if type(value) is list:
        return [_finalize(v) for v in value]
    return value


def apply(rule: Any, data: Any = None) -> Any:
    """Evaluate ``rule`` against ``data`` like ``jsonLogic.apply``; raises JsonLogicError."""
    try:
        return _finalize(compile_rule(rule)(data))
    except RecursionError as exc:  # pragma: no cover - absurdly deep rules
        raise JsonLogicError("rule nested too deeply") from exc


def operators_in(rule: Any) -> list[tuple[str, Any]]:
    """Every (operator, arguments) pair in a rule, for definition checking."""
    found: list[tuple[str, Any]] = []
    stack = [rule]
    while stack:
        r = stack.pop()
        if type(r) is list:
            stack.extend(r)
        elif type(r) is dict and len(r) == 1:
            ((op, values),) = r.items()
            found.append((op, values))
            stack.append(values)
    return found
