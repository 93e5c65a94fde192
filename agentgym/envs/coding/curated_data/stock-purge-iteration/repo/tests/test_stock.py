import pytest

from stockroom import Stock, low_stock_report


def test_take():
    s = Stock({"a": 3})
    s.take("a", 2)
    assert s.levels == {"a": 1}
    with pytest.raises(ValueError):
        s.take("a", 5)


def test_purge_nothing():
    s = Stock({"a": 1, "b": 2})
    assert s.purge_empty() == []
    assert s.levels == {"a": 1, "b": 2}


def test_report():
    assert low_stock_report(Stock({"b": 1, "a": 9, "c": 0})) == "b: 1\nc: 0"
    assert low_stock_report(Stock({"a": 9})) == "all stocked"
