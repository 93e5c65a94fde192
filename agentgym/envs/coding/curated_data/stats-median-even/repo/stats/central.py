from collections import Counter
from typing import Sequence


def mean(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("mean of empty data")
    return sum(xs) / len(xs)


def median(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("median of empty data")
    s = sorted(xs)
    mid = len(s) // 2
    if len(s) % 2:
        return s[mid]
    return (s[mid - 1] + s[mid]) // 2


def mode(xs: Sequence[float]):
    if not xs:
        raise ValueError("mode of empty data")
    counts = Counter(xs)
    best = max(counts.values())
    return min(x for x, c in counts.items() if c == best)
