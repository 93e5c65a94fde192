"""A minimal CSV reader (RFC 4180 subset: comma separator, double-quoted fields)."""

from typing import Iterable, Iterator, List


def parse_line(line: str) -> List[str]:
    fields: List[str] = []
    buf = ""
    in_quotes = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_quotes:
            if ch == '"':
                in_quotes = False
            else:
                buf += ch
        elif ch == '"':
            in_quotes = True
        elif ch == ",":
            fields.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    if in_quotes:
        raise ValueError(f"unterminated quoted field in {line!r}")
    fields.append(buf)
    return fields


def read_rows(lines: Iterable[str]) -> Iterator[List[str]]:
    for line in lines:
        line = line.rstrip("\r\n")
        if line:
            yield parse_line(line)
