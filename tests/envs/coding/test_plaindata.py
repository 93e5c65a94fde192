"""The plain-data codec of function grading (:mod:`agentgym.envs.coding.plaindata`).

Values round-trip exactly and keep their types; comparison is strict about types, set members,
dict keys and infinities; anything that is not built-in plain data, or a malformed document,
is refused. No sandbox is needed.
"""

from __future__ import annotations

import json
import math

import pytest

from agentgym.envs.coding import plaindata

# --- the decoder -----------------------------------------------------------------------------

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    2**200,
    -(3**150),
    1.5,
    -0.0,
    float("inf"),
    float("-inf"),
    5e-324,
    1e308,
    complex(1.5, -2),
    "",
    "héllo\x00\ud800",
    b"\x00\xff",
    [],
    (),
    [1, (2, 3)],
    (1,),
    {1, "a"},
    frozenset({(1, 2)}),
    {"a": [1, 2], (1, 2): {"b": None}, 3: 4.0},
    [[[[]]]],
    {frozenset({1}): (True, False)},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_plain_values_round_trip_exactly(value: object) -> None:
    back = plaindata.loads(plaindata.dumps(value))
    assert type(back) is type(value) and back == value and repr(back) == repr(value)
    assert plaindata.plain_equal(back, value)


def test_types_and_special_floats_stay_distinct() -> None:
    assert type(plaindata.loads(plaindata.dumps((1, 2)))) is tuple
    assert type(plaindata.loads(plaindata.dumps([1, 2]))) is list
    assert plaindata.loads(plaindata.dumps(True)) is True and type(plaindata.loads(plaindata.dumps(1))) is int
    nan = plaindata.loads(plaindata.dumps(math.nan))
    assert math.isnan(nan) and nan is not math.nan and [nan] != [math.nan]  # noqa: PLW0177 - no identity shortcut
    assert math.copysign(1, plaindata.loads(plaindata.dumps(-0.0))) == -1
    assert not plaindata.plain_equal([1, 2], (1, 2)) and not plaindata.plain_equal(True, 1)
    assert not plaindata.plain_equal(1, True) and not plaindata.plain_equal(2.0, 2)  # (got, expected)
    assert plaindata.plain_equal(2, 2.0) and not plaindata.plain_equal(True, 1.0)
    assert plaindata.plain_equal(0.1 + 0.2, 0.3, 1e-9) and not plaindata.plain_equal(0.1 + 0.2, 0.3)


INF = float("inf")


@pytest.mark.parametrize(
    ("got", "expected", "tol"),
    [
        (5.0, INF, 1e-6),
        (-INF, INF, 1e-6),
        (INF, -INF, 0.5),
        (1e308, INF, 1.0),
        (complex(1, 1), complex(INF, 1), 1e-3),
        *[
            (got, expected, 0.0)
            for got, expected in [
                ({True}, {1}),
                ({1}, {True}),
                ({1}, {1.0}),
                (frozenset({0}), frozenset({False})),
                ({(1,)}, {(True,)}),
                ({frozenset({True})}, {frozenset({1})}),
                ({complex(1, 0)}, {1.0}),
                ([{True, 2}], [{1, 2}]),
                ({True: "a"}, {1: "a"}),
                ({1.0: "a"}, {1: "a"}),
                ({(1, True): 0}, {(1, 1): 0}),
                ({"k": {True}}, {"k": {1}}),
            ]
        ],
    ],
    ids=repr,
)
def test_sets_dict_keys_and_infinities_stay_strict(got: object, expected: object, tol: float) -> None:
    """Neither ``True == 1`` in set members and dict keys nor ``inf - x`` lets a wrong result pass.

    Python's ``==`` takes True for 1, and ``inf - x`` is within any relative tolerance of ``inf``.
    """
    assert plaindata.plain_equal(expected, expected, tol)
    assert not plaindata.plain_equal(got, expected, tol)


def test_equal_sets_dicts_and_infinities_still_pass() -> None:
    nan = float("nan")
    assert plaindata.plain_equal({1, 2, (3, "a")}, {(3, "a"), 2, 1})
    assert plaindata.plain_equal({float("nan"): 1, 2: 3.0}, {nan: 1, 2: 3.0000001}, 1e-3)
    assert plaindata.plain_equal({-0.0}, {0.0}) and plaindata.plain_equal(INF, INF, 1e-6)
    assert plaindata.plain_equal(complex(-INF, 1), complex(-INF, 1.0001), 1e-3)


class _Sub(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [
        _Sub(1),
        [1, _Sub(2)],
        {"a": _Sub(3)},
        bytearray(b"x"),
        range(3),
        print,
        object(),
        iter([1]),
        (x for x in []),
        {1: {2: lambda: 0}},
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_plain_values_are_refused(value: object) -> None:
    with pytest.raises(plaindata.NotPlainError, match="not plain data"):
        plaindata.dumps(value)


def test_self_containing_values_are_refused() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(plaindata.NotPlainError, match="nested deeper"):
        plaindata.dumps(loop)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "[]",
        '["i", 12]',
        '["i", "0x1"]',
        '["i", "-"]',
        '["f", "nan", 1]',
        '["b", 1]',
        '["s"]',
        '["q", 1]',
        '["S", [["l", []]]]',
        '["d", [[["l", []], ["n"]]]]',
        '["d", [["n"]]]',
        '["y", "!!"]',
        "NaN",
        '["f", NaN]',
        "[" * 100_000 + "]" * 100_000,
        '["l", [' + ",".join(['["n"]'] * 10) + "]",
        '["f", "' + "1" * 100 + '"]',
        '["i", "' + "f" * (plaindata.MAX_INT_HEX + 1) + '"]',
        json.dumps(["l", [["l", []]] * 3])[:-3],
    ],
)
def test_malformed_documents_are_refused(text: str) -> None:
    with pytest.raises(plaindata.PlainDataError):
        plaindata.loads(text)


def test_deeply_nested_documents_are_refused() -> None:
    deep: list = ["n"]
    for _ in range(plaindata.MAX_DEPTH + 5):
        deep = ["l", [deep]]
    with pytest.raises(plaindata.PlainDataError, match="deeper"):
        plaindata.loads(json.dumps(deep))
