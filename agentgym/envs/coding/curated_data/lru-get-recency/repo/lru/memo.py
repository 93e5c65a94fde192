import functools

from .cache import LRUCache

_MISSING = object()


def lru_memo(capacity: int = 128):
    def deco(fn):
        cache = LRUCache(capacity)

        @functools.wraps(fn)
        def wrapper(*args):
            value = cache.get(args, _MISSING)
            if value is _MISSING:
                value = fn(*args)
                cache.put(args, value)
            return value

        wrapper.cache = cache
        return wrapper

    return deco
