"""Plain data as tagged JSON text: the only form in which a candidate's results reach a checker.

A function-level grader never holds an object the candidate's code made: the candidate runs
in another process and sends its result as text, and the checker rebuilds it from that text
with :func:`loads`. Only built-in plain values come back, so nothing the candidate wrote can
run in the checker (no ``__eq__``, ``__bool__``, ``__hash__``, ``__float__`` or
``__del__`` of its own).

Encoded exactly and kept distinct: ``None``, ``bool``, ``int`` (any size), ``float`` (incl.
``nan``, ``inf``, ``-0.0``; bit-exact), ``complex``, ``str`` (incl. lone surrogates),
``bytes``, ``list``, ``tuple``, ``set``, ``frozenset``, ``dict`` (order kept; keys any
hashable plain value). Every value is a JSON array whose first item is a one-letter tag, so a
tuple never decodes as a list and ``True`` never as ``1``.

:func:`dumps` accepts only objects whose type *is* one of those (``type(x) is int``, not
``isinstance``): subclasses, numpy scalars, generators and custom classes raise
:class:`NotPlainError`. :func:`loads` rejects anything malformed, too deep, too large, or
unhashable where a key or set member is needed, with :class:`PlainDataError`; it builds
fresh objects every time (a decoded ``nan`` is never ``math.nan``, so identity shortcuts in
container comparison cannot make it equal to an expected ``nan``).

Not covered: object identity and aliasing (a list holding the same list twice decodes as
two equal lists), mutation of arguments (a callee's in-place changes do not travel back),
and types outside the list above.

This module is stdlib-only and self-contained: its source is also run, as text, inside the
grading sandbox (see :mod:`agentgym.envs.coding.function_grading`).
"""

import base64 as _b64
import json as _json

# typing.TYPE_CHECKING without importing typing into the sandbox's processes: annotations that
# name ``Any`` are quoted, so nothing here needs typing at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_DEPTH = 200
"""Deepest nesting :func:`dumps` and :func:`loads` accept."""
MAX_NODES = 2_000_000
"""Most values (containers and scalars counted alike) in one document."""
MAX_INT_HEX = 1 << 16
"""Longest hex digit string of an int (about 78,000 decimal digits)."""


class PlainDataError(ValueError):
    """Text that is not a well-formed plain-data document."""


class NotPlainError(TypeError):
    """A value that is not built-in plain data (a subclass, a custom object, a function...)."""


_SEQUENCES: dict[type, str] = {list: "l", tuple: "t", set: "S", frozenset: "z"}


def _count_node(
    depth: int, count: list[int] | None, error: type[ValueError | TypeError], why_deep: str = ""
) -> list[int]:
    """``count`` (a fresh one when None) after counting one more node; ``error`` past the limits."""
    if count is None:
        count = [0]
    count[0] += 1
    if count[0] > MAX_NODES:
        raise error(f"more than {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise error(f"nested deeper than {MAX_DEPTH} levels{why_deep}")
    return count


def to_tagged(value: "Any", _depth: int = 0, _count: list[int] | None = None) -> list["Any"]:
    """``value`` as a JSON-compatible tagged structure; :class:`NotPlainError` if it is not plain data."""
    _count = _count_node(_depth, _count, NotPlainError, " (or a container that holds itself)")
    t = type(value)
    if t is type(None):
        return ["n"]
    if t is bool:
        return ["b", value]
    if t is int:
        return ["i", format(value, "x")]
    if t is float:
        return ["f", float.hex(value)]
    if t is complex:
        return ["c", float.hex(value.real), float.hex(value.imag)]
    if t is str:
        return ["s", value]
    if t is bytes:
        return ["y", _b64.b64encode(value).decode("ascii")]
    if t in _SEQUENCES:
        return [_SEQUENCES[t], [to_tagged(v, _depth + 1, _count) for v in value]]
    if t is dict:
        return ["d", [[to_tagged(k, _depth + 1, _count), to_tagged(v, _depth + 1, _count)] for k, v in value.items()]]
    raise NotPlainError(
        f"{describe_type(t)} is not plain data (use int, float, str, bool, None, bytes, complex, "
        f"list, tuple, dict, set or frozenset)"
    )


def describe_type(t: type) -> str:
    """``module.Qualname`` of a type, without calling anything the type defines."""
    try:
        module = type.__getattribute__(t, "__module__")
        name = type.__getattribute__(t, "__qualname__")
    except Exception:  # a metaclass can make anything raise
        return "an object of an unknown type"
    if not isinstance(module, str) or not isinstance(name, str):
        return "an object of an unknown type"
    return name[:100] if module == "builtins" else f"{module[:100]}.{name[:100]}"


def _hex_float(s: object) -> float:
    if type(s) is not str or len(s) > 40:
        raise PlainDataError("bad float")
    return float.fromhex(s)


def from_tagged(node: object, _depth: int = 0, _count: list[int] | None = None) -> "Any":
    """The plain value a tagged structure stands for; :class:`PlainDataError` if it is malformed."""
    _count = _count_node(_depth, _count, PlainDataError)
    if type(node) is not list or not node or type(node[0]) is not str:
        raise PlainDataError("every value must be a tagged array")
    tag, n = node[0], len(node)
    try:
        if tag == "n" and n == 1:
            return None
        if tag == "b" and n == 2 and type(node[1]) is bool:
            return bool(node[1])
        if tag == "i" and n == 2 and type(node[1]) is str and 0 < len(node[1]) <= MAX_INT_HEX:
            digits = node[1].removeprefix("-")
            if not digits or digits.strip("0123456789abcdef"):
                raise PlainDataError("bad int")
            return int(node[1], 16)
        if tag == "f" and n == 2:
            return _hex_float(node[1])
        if tag == "c" and n == 3:
            return complex(_hex_float(node[1]), _hex_float(node[2]))
        if tag == "s" and n == 2 and type(node[1]) is str:
            return node[1][:]
        if tag == "y" and n == 2 and type(node[1]) is str:
            return _b64.b64decode(node[1].encode("ascii"), validate=True)
        if tag in ("l", "t", "S", "z") and n == 2 and type(node[1]) is list:
            items = [from_tagged(v, _depth + 1, _count) for v in node[1]]
            return {"l": list, "t": tuple, "S": set, "z": frozenset}[tag](items)
        if tag == "d" and n == 2 and type(node[1]) is list:
            out: dict[object, object] = {}
            for pair in node[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise PlainDataError("a dict item must be a [key, value] pair")
                out[from_tagged(pair[0], _depth + 1, _count)] = from_tagged(pair[1], _depth + 1, _count)
            return out
    except PlainDataError:
        raise
    except (ValueError, TypeError, OverflowError, UnicodeError) as e:  # bad hex/base64, unhashable key or member
        raise PlainDataError(f"malformed {tag!r} value: {type(e).__name__}") from None
    raise PlainDataError(f"unknown tag or wrong arity: {tag[:10]!r}/{n}")


def dumps(value: object) -> str:
    """``value`` as one line of tagged JSON text (:class:`NotPlainError` if it is not plain data)."""
    return _json.dumps(to_tagged(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes, max_bytes: int = 64 << 20) -> "Any":
    """The plain value in ``text`` (str or bytes); :class:`PlainDataError` when it is not a valid document."""
    doc: object = text  # callers may pass anything: what is not str or bytes is rejected here
    if type(doc) is bytes:
        doc = doc.decode("utf-8", "strict") if len(doc) <= max_bytes else None
    if type(doc) is not str or len(doc) > max_bytes:
        raise PlainDataError(f"not a document of at most {max_bytes} bytes")
    try:
        node = _json.loads(doc, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise PlainDataError(f"not JSON ({type(e).__name__})") from None
    try:
        return from_tagged(node)
    except RecursionError:
        raise PlainDataError("nested too deeply") from None


def _no_constant(name: str) -> "NoReturn":
    raise PlainDataError(f"bare {name} is not allowed (floats are tagged)")


def plain_equal(got: "Any", expected: "Any", float_tol: float = 0.0) -> bool:
    """Strict equality of two plain values: same types all the way down.

    ``True`` is not ``1``, a tuple is not a list; floats and complex numbers within
    ``float_tol`` (relative and absolute), an ``int`` result accepted for a ``float``
    expectation; ``nan`` equals ``nan``; an infinity only equals the same infinity, whatever
    ``float_tol``.

    Set members and dict keys are matched by exact type and value (no tolerance, no ``int``
    for ``float``; ``-0.0`` is ``0.0``), never by Python's ``==`` on them, which takes ``True``
    for ``1`` and ``1.0``. Self-contained (no module-level helpers): the hidden pytest file of a
    function task embeds this function's source (which is why ``Any`` is quoted: that file
    does not import typing).
    """

    def key(x: "Any") -> tuple[object, ...]:  # a hashable stand-in for a set member or dict key that keeps its type
        t = type(x)
        if t is float:
            return ("f", "nan" if x != x else x + 0.0)
        if t is complex:
            return ("c", key(x.real), key(x.imag))
        if t is tuple:
            return ("t", tuple(key(v) for v in x))
        if t is frozenset:
            return ("z", frozenset(key(v) for v in x))
        return (t.__name__, x)

    def counts(items: "Any") -> dict[object, int]:
        out: dict[object, int] = {}
        for k in map(key, items):
            out[k] = out.get(k, 0) + 1
        return out

    te, tg = type(expected), type(got)
    if te is float or te is complex:
        if tg not in (int, float, complex) or (te is float and tg is complex):
            return False
        pairs = [(complex(got).real, complex(expected).real), (complex(got).imag, complex(expected).imag)]
        for g, e in pairs:
            if e != e or g != g:
                if not (e != e and g != g):
                    return False
            elif abs(e) == float("inf") or abs(g) == float("inf"):
                if g != e:
                    return False
            elif float_tol > 0:
                if abs(g - e) > float_tol * max(1.0, abs(e)):
                    return False
            elif g != e:
                return False
        return True
    if tg is not te:
        return False
    if te in (list, tuple):
        return len(got) == len(expected) and all(
            plain_equal(g, e, float_tol) for g, e in zip(got, expected, strict=True)
        )
    if te in (set, frozenset):
        return len(got) == len(expected) and counts(got) == counts(expected)
    if te is dict:
        gkeys, ekeys = {key(k): k for k in got}, {key(k): k for k in expected}
        if not len(got) == len(gkeys) == len(expected) == len(ekeys) or gkeys.keys() != ekeys.keys():
            return False
        return all(plain_equal(got[gkeys[c]], expected[ekeys[c]], float_tol) for c in ekeys)
    return bool(got == expected)  # both of the same built-in type: already a bool
