import pytest

from textfmt import center, justify, wrap


def test_wrap_basic():
    assert wrap("the quick brown fox jumps", 12) == ["the quick", "brown fox", "jumps"]


def test_long_word():
    assert wrap("a extraordinarily b", 5) == ["a", "extraordinarily", "b"]


def test_invalid_width():
    with pytest.raises(ValueError):
        wrap("x", 0)


def test_center():
    assert center("ab", 6) == "  ab"
