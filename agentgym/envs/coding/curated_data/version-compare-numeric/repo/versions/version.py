import re
from functools import total_ordering
from typing import Tuple

_RE = re.compile(r"^v?(\d+(?:\.\d+)*)$")


@total_ordering
class Version:
    def __init__(self, parts: Tuple[str, ...]) -> None:
        self.parts = parts

    def _key(self):
        parts = list(self.parts)
        while len(parts) > 1 and parts[-1] == "0":
            parts.pop()  # 1.2 == 1.2.0
        return tuple(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: "Version") -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return ".".join(self.parts)


def parse(text: str) -> Version:
    m = _RE.match(text.strip())
    if not m:
        raise ValueError(f"not a version: {text!r}")
    return Version(tuple(m.group(1).split(".")))
