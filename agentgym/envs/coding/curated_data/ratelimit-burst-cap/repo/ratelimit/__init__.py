from .bucket import TokenBucket
from .clock import ManualClock, MonotonicClock
from .limiter import KeyedLimiter

__all__ = ["TokenBucket", "ManualClock", "MonotonicClock", "KeyedLimiter"]
