from typing import Any, List, Tuple


class Recorder:
    """A handler that remembers its calls (handy in tests and debugging)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.calls: List[Tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)
