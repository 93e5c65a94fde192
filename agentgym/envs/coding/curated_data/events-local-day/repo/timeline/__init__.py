from .events import Event
from .grouping import group_by_day, busiest_day

__all__ = ["Event", "group_by_day", "busiest_day"]
