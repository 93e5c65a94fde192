from intervals import Interval, overlap


def test_scale_negative_keeps_order():
    assert Interval(1, 3).scale(-2) == Interval(-6, -2)


def test_scaled_interval_contains_images():
    i = Interval(1, 3).scale(-1)
    assert i.contains(-2)
    assert i.width == 2


def test_overlap_after_negative_scale():
    assert overlap(Interval(1, 3).scale(-1), Interval(-2.5, 0)) == Interval(-2.5, -1)


def test_scale_zero():
    assert Interval(1, 3).scale(0) == Interval(0, 0)
