"""Why a project cannot be used for synthesis: one category and one line of detail."""

from __future__ import annotations

from typing import Literal

Category = Literal[
    "download",
    "too-large",
    "no-tests",
    "collection-error",
    "missing-dependency",
    "compiled-extension",
    "baseline-failures",
    "timeout",
    "grader-rejects",
]
"""``download``: no sdist; ``too-large``: over the size limit; ``no-tests``: no test files or none
collected; ``collection-error``: test modules or conftest fail to import; ``missing-dependency``: an
import of a module that is not installed (and could not be); ``compiled-extension``: the project's
own compiled module is missing (it needs a build); ``baseline-failures``: tests run but none
passes; ``timeout``: the baseline run took too long; ``grader-rejects``: the coding grader rejects
every task for the same reason (an integrity flag the project's own code raises, a dependency
its sandbox lacks)."""


class SynthError(RuntimeError):
    """The project cannot be used: ``category`` says which kind of problem, ``detail`` which one.

    Args:
        category: One of :data:`Category`.
        detail: One line naming the problem (a file, a module, a message).
    """

    def __init__(self, category: Category, detail: str) -> None:
        self.category = category
        self.detail = " ".join(detail.split())
        super().__init__(f"{category}: {self.detail}")

    def line(self, project: str) -> str:
        """The one line ``agentgym tasks synth`` prints: ``cannot use <project>: <category>: <detail>``."""
        return f"cannot use {project}: {self}"
