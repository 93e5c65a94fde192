import pytest

from units import convert


def test_celsius_to_fahrenheit():
    assert convert(100, "C", "F") == 212
    assert convert(0, "C", "F") == 32


def test_kelvin_to_fahrenheit():
    assert convert(273.15, "K", "F") == pytest.approx(32)


def test_round_trip():
    assert convert(convert(-40, "F", "C"), "C", "F") == pytest.approx(-40)
