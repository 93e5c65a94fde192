from collections import defaultdict
from datetime import date, tzinfo
from typing import Dict, Iterable, List, Optional

from .events import Event


def group_by_day(events: Iterable[Event], tz: tzinfo) -> Dict[date, List[Event]]:
    """Group events by calendar day as seen in ``tz``, each day's events in time order."""
    days: Dict[date, List[Event]] = defaultdict(list)
    for ev in sorted(events, key=lambda e: e.at):
        days[ev.at.date()].append(ev)
    return dict(days)


def busiest_day(events: Iterable[Event], tz: tzinfo) -> Optional[date]:
    days = group_by_day(events, tz)
    if not days:
        return None
    return max(sorted(days), key=lambda d: len(days[d]))
