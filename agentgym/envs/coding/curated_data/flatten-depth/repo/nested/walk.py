from typing import Any, Iterator


def leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, (list, tuple)):
        for child in tree:
            yield from leaves(child)
    else:
        yield tree


def depth(tree: Any) -> int:
    """0 for a leaf, 1 for a flat list, ..."""
    if not isinstance(tree, (list, tuple)):
        return 0
    return 1 + max((depth(c) for c in tree), default=0)
