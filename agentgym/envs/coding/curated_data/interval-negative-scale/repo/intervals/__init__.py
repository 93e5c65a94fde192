from .interval import Interval
from .ops import hull, overlap

__all__ = ["Interval", "hull", "overlap"]
