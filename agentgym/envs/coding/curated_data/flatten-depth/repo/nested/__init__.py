from .flatten import flatten
from .walk import leaves, depth

__all__ = ["flatten", "leaves", "depth"]
