from typing import List, Tuple

Slot = Tuple[int, int]  # [start, end) in minutes since midnight


def merge_slots(slots: List[Slot]) -> List[Slot]:
    """Merge overlapping or back-to-back slots; the result is sorted and disjoint."""
    merged: List[Slot] = []
    for start, end in slots:
        if start >= end:
            raise ValueError(f"empty slot ({start}, {end})")
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
