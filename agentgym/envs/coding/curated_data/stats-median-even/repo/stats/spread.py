from typing import Sequence, Tuple

from .central import median


def quartiles(xs: Sequence[float]) -> Tuple[float, float, float]:
    """Q1, Q2, Q3 by the median-of-halves method (the middle value is excluded from both halves)."""
    if len(xs) < 2:
        raise ValueError("need at least two values")
    s = sorted(xs)
    half = len(s) // 2
    lower, upper = s[:half], s[half + len(s) % 2:]
    return median(lower), median(s), median(upper)


def iqr(xs: Sequence[float]) -> float:
    q1, _, q3 = quartiles(xs)
    return q3 - q1
