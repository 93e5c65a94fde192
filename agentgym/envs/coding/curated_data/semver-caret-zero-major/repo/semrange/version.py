import re
from typing import NamedTuple

_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class SemVer(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> "SemVer":
        m = _RE.match(text.strip())
        if not m:
            raise ValueError(f"not a semantic version: {text!r}")
        return cls(*map(int, m.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
