"""npm-style ranges: ``^1.2.3``, ``~1.2.3``, ``>=1.2.3``, ``=1.2.3`` (and a bare version)."""

from dataclasses import dataclass
from typing import Optional

from .version import SemVer


@dataclass(frozen=True)
class Range:
    low: SemVer  # inclusive
    high: Optional[SemVer]  # exclusive; None = unbounded

    def __contains__(self, version: object) -> bool:
        v = SemVer.parse(version) if isinstance(version, str) else version
        return self.low <= v and (self.high is None or v < self.high)


def _caret(v: SemVer) -> Range:
    """Allow changes that do not modify the left-most non-zero component."""
    return Range(v, SemVer(v.major + 1, 0, 0))


def _tilde(v: SemVer) -> Range:
    return Range(v, SemVer(v.major, v.minor + 1, 0))


def parse_range(spec: str) -> Range:
    spec = spec.strip()
    if spec.startswith("^"):
        return _caret(SemVer.parse(spec[1:]))
    if spec.startswith("~"):
        return _tilde(SemVer.parse(spec[1:]))
    if spec.startswith(">="):
        return Range(SemVer.parse(spec[2:]), None)
    v = SemVer.parse(spec.lstrip("="))
    return Range(v, SemVer(v.major, v.minor, v.patch + 1))
