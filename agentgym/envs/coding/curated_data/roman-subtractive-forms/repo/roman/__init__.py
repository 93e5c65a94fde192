from .encode import to_roman
from .decode import from_roman

__all__ = ["to_roman", "from_roman"]
