import pytest

from stats import mean, median, mode, quartiles


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_median_odd():
    assert median([5, 1, 3]) == 3


def test_median_even_integers_with_even_sum():
    assert median([1, 3, 5, 7]) == 4


def test_mode_prefers_smallest():
    assert mode([3, 1, 3, 1, 2]) == 1


def test_empty():
    with pytest.raises(ValueError):
        median([])


def test_quartiles_odd():
    assert quartiles([1, 2, 3, 4, 5, 6, 7]) == (2, 4, 6)
