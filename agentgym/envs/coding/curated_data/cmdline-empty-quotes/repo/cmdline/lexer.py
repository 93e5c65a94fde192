"""A small shell-like word splitter: whitespace separates words, quotes group them."""

from typing import List


class LexError(ValueError):
    pass


def split(line: str) -> List[str]:
    words: List[str] = []
    current = ""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(line):
                i += 1
                current += line[i]
            else:
                current += ch
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if current:
                words.append(current)
                current = ""
        elif ch == "\\" and i + 1 < len(line):
            i += 1
            current += line[i]
        else:
            current += ch
        i += 1
    if quote:
        raise LexError(f"unterminated {quote} quote")
    if current:
        words.append(current)
    return words
