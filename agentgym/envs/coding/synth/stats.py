"""What happened to each mutant tried, counted per mutation operator: the yield table.

Two-bug tasks (:mod:`.harder`) are counted under their own row, :data:`PAIR`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

Outcome = Literal["kept", "survived", "uncovered", "broken", "timeout", "rejected", "near", "overlap"]
"""How a mutant ended; see the fields of :class:`OperatorStats`."""
PAIR = "pair"
"""The row of two-bug tasks (two kept mutants in different files, tried together)."""
OPTIONAL = ("near", "overlap")
"""Columns of :func:`yield_table` shown only when some row counts them (``far``, ``pairs`` runs)."""


@dataclass
class OperatorStats:
    """Mutants of one operator by outcome; every mutant tried has exactly one."""

    tried: int = 0
    """Distinct mutants tried (the yield denominator)."""
    kept: int = 0
    """Some tests failed and the others still passed: a task."""
    survived: int = 0
    """No test failed (an equivalent mutant, or the suite does not check this)."""
    uncovered: int = 0
    """No passing test executes the mutated lines (rejected without running)."""
    broken: int = 0
    """Collection errors, or every test failed."""
    timeout: int = 0
    """The tests ran past the mutant timeout."""
    rejected: int = 0
    """A task, but the coding grader does not score its fix 1 (an integrity flag the project's own
    code raises, a test that needs a dependency the grader's sandbox lacks ...)."""
    near: int = 0
    """A task, but a failing test names the mutated function, and only far bugs were wanted."""
    overlap: int = 0
    """A pair whose failing tests one of its mutants explains alone: not two bugs."""

    def record(self, outcome: Outcome) -> None:
        """Count one more mutant tried, with its outcome."""
        self.tried += 1
        setattr(self, outcome, getattr(self, outcome) + 1)

    def __add__(self, other: OperatorStats) -> OperatorStats:
        return OperatorStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def yield_pct(self) -> float:
        """Percentage of mutants tried that became tasks."""
        return 100.0 * self.kept / self.tried if self.tried else 0.0


def yield_table(stats: Mapping[str, OperatorStats]) -> str:
    """Per-operator yield as a Markdown table, with a total row.

    The ``near`` and ``overlap`` columns appear only when some mutant ended so.

    Args:
        stats: Operator name -> its counts, in the order the rows should appear.

    Returns:
        The table, name column left-aligned and numbers right-aligned.
    """
    total = sum(stats.values(), OperatorStats())
    extra = tuple(c for c in OPTIONAL if getattr(total, c))
    header = ("operator", "tried", "kept", "yield", "survived", "uncovered", "broken", "timeout", "rejected", *extra)
    rows = [header, *(_row(name, s, extra) for name, s in [*stats.items(), ("total", total)])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), rule, *map(line, rows[1:])])


def _row(name: str, s: OperatorStats, extra: tuple[str, ...]) -> tuple[str, ...]:
    counts = (s.survived, s.uncovered, s.broken, s.timeout, s.rejected, *(getattr(s, c) for c in extra))
    return (name, str(s.tried), str(s.kept), f"{s.yield_pct:.0f}%", *map(str, counts))
