from typing import List

from .wrap import wrap


def center(line: str, width: int) -> str:
    return line.center(width).rstrip()


def justify(text: str, width: int) -> List[str]:
    """Wrap, then pad inner spaces so every line but the last is exactly ``width`` wide."""
    lines = wrap(text, width)
    out = []
    for i, line in enumerate(lines):
        words = line.split()
        if i == len(lines) - 1 or len(words) == 1:
            out.append(line)
            continue
        gaps = len(words) - 1
        spaces = width - sum(len(w) for w in words)
        pieces = []
        for j, w in enumerate(words[:-1]):
            pieces.append(w + " " * (spaces // gaps + (1 if j < spaces % gaps else 0)))
        out.append("".join(pieces) + words[-1])
    return out
