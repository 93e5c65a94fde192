from typing import Any, Iterable, List, Optional


def _is_seq(x: Any) -> bool:
    return isinstance(x, (list, tuple))


def flatten(items: Iterable[Any], depth: Optional[int] = None) -> List[Any]:
    """Flatten nested lists/tuples; ``depth`` limits how many levels are removed (None: all)."""
    if depth is not None and depth < 0:
        return list(items)
    out: List[Any] = []
    for x in items:
        if _is_seq(x):
            out.extend(flatten(x, None if depth is None else depth - 1))
        else:
            out.append(x)
    return out
