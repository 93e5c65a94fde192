from .version import SemVer
from .ranges import Range, parse_range

__all__ = ["SemVer", "Range", "parse_range"]
