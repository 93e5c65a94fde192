from .central import mean, median, mode
from .spread import iqr, quartiles

__all__ = ["mean", "median", "mode", "iqr", "quartiles"]
