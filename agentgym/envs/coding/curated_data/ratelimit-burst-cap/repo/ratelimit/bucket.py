class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` stored; each request takes one token."""

    def __init__(self, rate: float, capacity: int, clock) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = float(capacity)
        self.updated = clock.now()

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens += (now - self.updated) * self.rate
        self.updated = now

    def allow(self, cost: float = 1.0) -> bool:
        self._refill()
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
