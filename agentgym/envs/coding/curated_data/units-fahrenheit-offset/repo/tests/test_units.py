import pytest

from units import UnknownUnit, convert


def test_lengths():
    assert convert(1, "km", "m") == 1000
    assert convert(12, "in", "ft") == pytest.approx(1)


def test_fahrenheit_to_celsius():
    assert convert(212, "F", "C") == 100
    assert convert(32, "F", "C") == 0


def test_kelvin():
    assert convert(0, "C", "K") == 273.15


def test_incompatible():
    with pytest.raises(UnknownUnit):
        convert(1, "m", "C")
