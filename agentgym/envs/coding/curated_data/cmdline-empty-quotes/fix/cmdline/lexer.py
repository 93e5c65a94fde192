"""A small shell-like word splitter: whitespace separates words, quotes group them."""

from typing import List


class LexError(ValueError):
    pass


def split(line: str) -> List[str]:
    words: List[str] = []
    current = ""
    in_word = False  # a quoted empty string is still a word
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
            in_word = True
        elif ch.isspace():
            if in_word:
                words.append(current)
                current = ""
                in_word = False
        elif ch == "\\" and i + 1 < len(line):
            i += 1
            current += line[i]
            in_word = True
        else:
            current += ch
            in_word = True
        i += 1
    if quote:
        raise LexError(f"unterminated {quote} quote")
    if in_word:
        words.append(current)
    return words
