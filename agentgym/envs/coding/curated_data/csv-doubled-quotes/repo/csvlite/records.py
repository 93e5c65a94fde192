from typing import Dict, Iterable, List

from .reader import read_rows


def to_records(lines: Iterable[str]) -> List[Dict[str, str]]:
    rows = read_rows(lines)
    try:
        header = next(rows)
    except StopIteration:
        return []
    out = []
    for n, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise ValueError(f"line {n}: expected {len(header)} fields, got {len(row)}")
        out.append(dict(zip(header, row)))
    return out
