from lru import LRUCache, lru_memo


def test_evicts_oldest_insert():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)
    assert "a" not in c and c.keys() == ["b", "c"]


def test_put_existing_refreshes():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 10)
    c.put("c", 3)
    assert c.keys() == ["a", "c"] and c.get("a") == 10


def test_memo_counts():
    calls = []

    @lru_memo(4)
    def sq(x):
        calls.append(x)
        return x * x

    assert [sq(2), sq(2), sq(3)] == [4, 4, 9]
    assert calls == [2, 3] and sq.cache.hits == 1
