from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number ``n`` (n = 1 for the first retry): base * factor**(n-1), capped."""

    base: float = 0.1
    factor: float = 2.0
    cap: float = 10.0

    def delay(self, n: int) -> float:
        return min(self.cap, self.base * self.factor ** (n - 1))
