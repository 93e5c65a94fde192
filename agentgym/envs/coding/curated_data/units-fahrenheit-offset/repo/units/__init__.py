from .convert import convert, UnknownUnit
from .tables import LENGTH, TEMPERATURE

__all__ = ["convert", "UnknownUnit", "LENGTH", "TEMPERATURE"]
