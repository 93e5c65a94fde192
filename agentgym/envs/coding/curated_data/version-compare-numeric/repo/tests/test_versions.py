import pytest

from versions import latest, parse, satisfies_minimum


def test_parse_and_str():
    assert str(parse("v1.2.3")) == "1.2.3"
    with pytest.raises(ValueError):
        parse("1.x")


def test_ordering_single_digits():
    assert parse("1.2.3") < parse("1.3.0")
    assert parse("2.0") > parse("1.9.9")


def test_trailing_zeros_equal():
    assert parse("1.2") == parse("1.2.0")


def test_latest():
    assert latest(["1.0", "1.2", "1.1"]) == "1.2"
    assert latest([]) is None
