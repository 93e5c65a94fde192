from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Page:
    items: list
    number: int
    per_page: int
    total: int

    @property
    def page_count(self) -> int:
        if self.total == 0:
            return 1
        return self.total // self.per_page

    @property
    def has_next(self) -> bool:
        return self.number < self.page_count

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def paginate(items: Sequence[Any], number: int = 1, per_page: int = 10) -> Page:
    """Return page ``number`` (1-based) of ``items``."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if number < 1:
        raise ValueError("page numbers start at 1")
    start = (number - 1) * per_page
    return Page(list(items[start:start + per_page]), number, per_page, len(items))
