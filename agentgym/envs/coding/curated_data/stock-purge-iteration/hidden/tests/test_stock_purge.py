from stockroom import Stock


def test_purge_one_empty_sku():
    s = Stock({"a": 0, "b": 2})
    assert s.purge_empty() == ["a"]
    assert s.levels == {"b": 2}


def test_purge_several():
    s = Stock({"a": 1, "b": 0, "c": 0, "d": 4})
    assert s.purge_empty() == ["b", "c"]
    assert s.levels == {"a": 1, "d": 4}


def test_purge_after_taking_everything():
    s = Stock({"x": 2, "y": 1})
    s.take("x", 2)
    s.take("y", 1)
    assert s.purge_empty() == ["x", "y"]
    assert s.levels == {}
