from typing import Dict

from .bucket import TokenBucket
from .clock import MonotonicClock


class KeyedLimiter:
    """One token bucket per key (user, IP, API token ...)."""

    def __init__(self, rate: float, capacity: int, clock=None) -> None:
        self.rate, self.capacity = rate, capacity
        self.clock = clock or MonotonicClock()
        self._buckets: Dict[str, TokenBucket] = {}

    def allow(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.capacity, self.clock)
        return bucket.allow()
