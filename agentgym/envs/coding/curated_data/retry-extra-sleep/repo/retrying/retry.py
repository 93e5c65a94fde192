import time
from typing import Callable, Tuple, Type, TypeVar

from .policy import Backoff

T = TypeVar("T")


class RetryError(Exception):
    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last!r}")
        self.attempts = attempts
        self.last = last


def retry_call(
    fn: Callable[[], T],
    attempts: int = 3,
    backoff: Backoff = Backoff(),
    retry_on: Tuple[Type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` up to ``attempts`` times, sleeping between attempts."""
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for n in range(1, attempts + 1):
        try:
            return fn()
        except retry_on as e:
            last = e
            sleep(backoff.delay(n))
    raise RetryError(attempts, last)
