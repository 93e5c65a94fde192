from .parser import parse_ini, ParseError
from .access import get_bool, get_int

__all__ = ["parse_ini", "ParseError", "get_bool", "get_int"]
