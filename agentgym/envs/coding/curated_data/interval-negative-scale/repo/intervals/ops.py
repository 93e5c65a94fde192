from typing import Optional

from .interval import Interval


def overlap(a: Interval, b: Interval) -> Optional[Interval]:
    lo, hi = max(a.lo, b.lo), min(a.hi, b.hi)
    return Interval(lo, hi) if lo <= hi else None


def hull(a: Interval, b: Interval) -> Interval:
    return Interval(min(a.lo, b.lo), max(a.hi, b.hi))
