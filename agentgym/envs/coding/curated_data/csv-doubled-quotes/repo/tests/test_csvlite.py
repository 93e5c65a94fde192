import pytest

from csvlite import parse_line, to_records


def test_plain():
    assert parse_line("a,b,c") == ["a", "b", "c"]


def test_quoted_comma():
    assert parse_line('"Smith, J",42') == ["Smith, J", "42"]


def test_empty_fields():
    assert parse_line(",,") == ["", "", ""]


def test_unterminated():
    with pytest.raises(ValueError):
        parse_line('"abc')


def test_records():
    assert to_records(["name,age\n", "ann,3\n"]) == [{"name": "ann", "age": "3"}]
