import pytest

from roman import from_roman, to_roman


def test_small_numbers():
    assert [to_roman(i) for i in (1, 3, 4, 6, 9, 14)] == ["I", "III", "IV", "VI", "IX", "XIV"]


def test_decode():
    assert from_roman("MCMXCIV") == 1994
    assert from_roman("XLII") == 42


def test_range():
    with pytest.raises(ValueError):
        to_roman(0)
    with pytest.raises(ValueError):
        from_roman("ABC")
