class Interval:
    """A closed interval [lo, hi]; always lo <= hi."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: float, hi: float) -> None:
        if lo > hi:
            raise ValueError(f"empty interval [{lo}, {hi}]")
        self.lo = lo
        self.hi = hi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interval) and (self.lo, self.hi) == (other.lo, other.hi)

    def __repr__(self) -> str:
        return f"Interval({self.lo}, {self.hi})"

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def shift(self, d: float) -> "Interval":
        return Interval(self.lo + d, self.hi + d)

    def scale(self, k: float) -> "Interval":
        """The image of the interval under x -> k * x."""
        a, b = self.lo * k, self.hi * k
        return Interval(min(a, b), max(a, b))
