from typing import Optional

from .core import Page


def page_links(page: Page, base_url: str) -> dict:
    """Links for an API response: first, last, next and previous (None when absent)."""

    def url(n: int) -> str:
        return f"{base_url}?page={n}&per_page={page.per_page}"

    nxt: Optional[str] = url(page.number + 1) if page.has_next else None
    prev: Optional[str] = url(page.number - 1) if page.has_previous else None
    return {"first": url(1), "last": url(page.page_count), "next": nxt, "prev": prev}
