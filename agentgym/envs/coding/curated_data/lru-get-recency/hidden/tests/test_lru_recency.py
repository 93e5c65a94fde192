from lru import LRUCache, lru_memo


def test_get_marks_entry_as_recently_used():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert "a" in c and "b" not in c


def test_memo_keeps_hot_entries():
    calls = []

    @lru_memo(2)
    def f(x):
        calls.append(x)
        return x

    f(1), f(2), f(1), f(3), f(1)
    assert calls == [1, 2, 3]


def test_miss_does_not_change_order():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("zzz") is None
    c.put("c", 3)
    assert c.keys() == ["b", "c"]
