from .reader import parse_line, read_rows
from .records import to_records

__all__ = ["parse_line", "read_rows", "to_records"]
