"""Tiny pagination helpers for list endpoints."""

from .core import Page, paginate
from .links import page_links

__all__ = ["Page", "paginate", "page_links"]
