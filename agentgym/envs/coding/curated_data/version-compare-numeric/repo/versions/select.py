from typing import Iterable, Optional

from .version import parse


def latest(versions: Iterable[str]) -> Optional[str]:
    parsed = [parse(v) for v in versions]
    return str(max(parsed)) if parsed else None


def satisfies_minimum(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)
