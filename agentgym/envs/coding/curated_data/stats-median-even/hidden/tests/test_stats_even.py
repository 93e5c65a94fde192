from stats import iqr, median, quartiles


def test_median_even_is_midpoint():
    assert median([1, 2, 3, 4]) == 2.5


def test_median_even_floats():
    assert median([0.5, 0.25]) == 0.375


def test_median_negative():
    assert median([-3, -2]) == -2.5


def test_quartiles_even():
    assert quartiles([1, 2, 3, 4, 5, 6]) == (2, 3.5, 5)


def test_iqr_with_halves():
    assert iqr([1, 2, 3, 4, 5, 6, 7, 8]) == 4.0
