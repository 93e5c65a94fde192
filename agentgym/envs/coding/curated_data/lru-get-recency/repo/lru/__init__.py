from .cache import LRUCache
from .memo import lru_memo

__all__ = ["LRUCache", "lru_memo"]
