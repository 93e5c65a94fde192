"""Griffe extension for the docs site: the docstrings' reST roles rendered as Markdown code.

The code's docstrings cite other objects Sphinx-style (``:class:`~agentgym.sandboxes.Sandbox```),
which Markdown would print verbatim. This turns each role into a code span: the last
component when the target starts with ``~`` (as Sphinx shows it), the full path otherwise.
Only the docs build loads it (``extensions`` in mkdocs.yml); the docstrings are unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):`(~?)([^`]+)`")


def _code_span(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class RstRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring as a Markdown code span."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Rewrite the roles of one object's docstring once the object tree is complete."""
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code_span, obj.docstring.value)
