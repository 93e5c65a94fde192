from collections import defaultdict
from typing import Any, Callable, Dict, List

Handler = Callable[..., Any]


class EventBus:
    """Synchronous publish/subscribe. Handlers run in subscription order."""

    def __init__(self) -> None:
        self._handlers: Dict[str, List[Handler]] = defaultdict(list)

    def on(self, event: str, handler: Handler) -> Callable[[], None]:
        self._handlers[event].append(handler)
        return lambda: self.off(event, handler)

    def once(self, event: str, handler: Handler) -> None:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.off(event, wrapper)
            return handler(*args, **kwargs)

        self.on(event, wrapper)

    def off(self, event: str, handler: Handler) -> None:
        if handler in self._handlers[event]:
            self._handlers[event].remove(handler)

    def emit(self, event: str, *args: Any, **kwargs: Any) -> int:
        """Call every handler of ``event``; returns how many ran."""
        count = 0
        for handler in self._handlers[event]:
            handler(*args, **kwargs)
            count += 1
        return count

    def listeners(self, event: str) -> int:
        return len(self._handlers[event])
