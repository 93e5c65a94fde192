from typing import List

from .merge import Slot, merge_slots


def busy_minutes(slots: List[Slot]) -> int:
    return sum(end - start for start, end in merge_slots(slots))


def free_slots(slots: List[Slot], day_start: int = 0, day_end: int = 24 * 60) -> List[Slot]:
    free, cursor = [], day_start
    for start, end in merge_slots(slots):
        if start > cursor:
            free.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < day_end:
        free.append((cursor, day_end))
    return free
