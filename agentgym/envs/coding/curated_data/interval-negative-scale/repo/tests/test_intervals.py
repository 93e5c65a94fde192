import pytest

from intervals import Interval, hull, overlap


def test_invalid():
    with pytest.raises(ValueError):
        Interval(2, 1)


def test_scale_positive():
    assert Interval(1, 3).scale(2) == Interval(2, 6)


def test_ops():
    assert overlap(Interval(0, 5), Interval(3, 9)) == Interval(3, 5)
    assert overlap(Interval(0, 1), Interval(2, 3)) is None
    assert hull(Interval(0, 1), Interval(2, 3)) == Interval(0, 3)


def test_shift_and_contains():
    i = Interval(0, 2).shift(1)
    assert i.contains(3) and not i.contains(0.5)
