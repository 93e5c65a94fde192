from .merge import merge_slots
from .calendar import busy_minutes, free_slots

__all__ = ["merge_slots", "busy_minutes", "free_slots"]
