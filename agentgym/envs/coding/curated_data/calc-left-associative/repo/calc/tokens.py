import re
from dataclasses import dataclass
from typing import List

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|(.))")


@dataclass(frozen=True)
class Token:
    kind: str  # "num" or "op"
    text: str


def tokenize(src: str) -> List[Token]:
    out: List[Token] = []
    for number, other in _TOKEN.findall(src):
        if number:
            out.append(Token("num", number))
        elif other in "+-*/()":
            out.append(Token("op", other))
        elif other.strip():
            raise SyntaxError(f"unexpected character {other!r}")
    return out
