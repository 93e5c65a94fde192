from .lexer import split, LexError
from .parser import parse_command

__all__ = ["split", "LexError", "parse_command"]
