"""Harder tasks: two bugs in two files at once, and bugs whose failing tests are far from them.

* **Distance.** A bug is *near* when one of its failing tests names the function it lies
  in (the test's own source, decorators included, mentions the name), and *far* when
  none does: the tests reach it only through other code, so the agent must trace the
  failure from the tested function down to the broken one. Names count as mentioned
  when they appear as a word with ``_`` allowed as a boundary, so ``test_parse_dates``
  mentions ``parse``; anything this module cannot resolve (a site outside any function or
  class, a test it cannot find in its file) counts as near.
* **Pairs.** Two kept mutants in different files, applied together, are a two-bug task when
  each explains a failing test of the pair that the other does not (:func:`is_two_bugs`):
  fixing one file leaves tests failing, and the failures are not one bug's.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..mutations import Site

Distance = Literal["far", "near"]
"""``far``: no failing test names the mutated function; ``near``: one does (or it cannot be told)."""

_Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class Mutant:
    """One single-file mutant the suite catches: its site, text, and the tests it breaks."""

    site: Site
    text: str
    """The mutated file's content."""
    fail_to_pass: frozenset[str]
    """The passing tests that fail with this mutant alone."""


def _enclosing(tree: ast.Module, line: int) -> list[_Scope]:
    """The functions and classes whose body holds ``line``, outermost first."""
    chain: list[_Scope] = []
    body: Sequence[ast.stmt] = tree.body
    while True:
        inner = next(
            (
                node
                for node in body
                if isinstance(node, _Scope) and node.lineno <= line <= (node.end_lineno or node.lineno)
            ),
            None,
        )
        if inner is None:
            return chain
        chain.append(inner)
        body = [s for s in ast.walk(inner) if isinstance(s, _Scope) and s is not inner]


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _top_statement(tree: ast.Module, line: int) -> ast.stmt | None:
    return next((s for s in tree.body if s.lineno <= line <= (s.end_lineno or s.lineno)), None)


def mutated_names(source: str, line: int) -> list[str]:
    """The names a test would write to call the code at ``line`` of ``source``.

    Every enclosing function (a closure's outer function too) and, for a method whose name
    a test never writes (``__init__``, ``__eq__``...), its class; for a site in a class body
    outside any method, the class; for a module-level assignment, its targets. Empty when
    the site is none of these (or the source does not parse).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    chain = _enclosing(tree, line)
    names: list[str] = []
    for node, inner in zip(chain, [*chain[1:], None], strict=False):
        if isinstance(node, ast.ClassDef):
            if inner is None or _dunder(inner.name):
                names.append(node.name)
        elif not _dunder(node.name):
            names.append(node.name)
    if chain:
        return list(dict.fromkeys(names))
    top = _top_statement(tree, line)
    targets: list[ast.expr] = []
    if isinstance(top, ast.Assign):
        targets = list(top.targets)
    elif isinstance(top, ast.AnnAssign | ast.AugAssign):
        targets = [top.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def source_of_test(files: Mapping[str, str], nodeid: str) -> str | None:
    """The source of one test (its decorators and body, or its whole class for a class-level id).

    Args:
        files: The project as ``{relpath: content}``.
        nodeid: A pytest node id, e.g. ``tests/test_a.py::TestX::test_y[1-2]``.

    Returns:
        The lines of the test's definition, or None when they cannot be found (a file that does
        not parse, a test inherited or generated at run time).
    """
    path, *parts = re.sub(r"\[.*\]$", "", nodeid).split("::")
    if path not in files or not parts:
        return None
    try:
        tree = ast.parse(files[path])
    except SyntaxError:
        return None
    body: Sequence[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for name in parts:
        node = next((s for s in body if isinstance(s, _Scope) and s.name == name), None)
        if node is None:
            return None
        body = node.body
    assert node is not None
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    lines = files[path].splitlines()
    return "\n".join(lines[start - 1 : node.end_lineno or node.lineno])


def mentions(text: str, name: str) -> bool:
    """Whether ``name`` appears in ``text`` as a word (letters and digits around it break it, ``_`` does not)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text) is not None


def distance(files: Mapping[str, str], sites: Iterable[Site], fail_to_pass: Iterable[str]) -> Distance:
    """``far`` when no failing test's source names a function the bugs at ``sites`` lie in.

    Args:
        files: The original project as ``{relpath: content}``.
        sites: The mutation sites (one for a single bug, two for a pair).
        fail_to_pass: The tests the bugs break.

    Returns:
        ``far`` or ``near``; ``near`` whenever a name or a test's source cannot be found.
    """
    names = []
    for site in sites:
        found = mutated_names(files.get(site.path, ""), site.line)
        if not found:
            return "near"
        names += found
    for test in fail_to_pass:
        source = source_of_test(files, test)
        if source is None or any(mentions(source, n) for n in names):
            return "near"
    return "far"


def is_two_bugs(pair: Iterable[str], first: Iterable[str], second: Iterable[str]) -> bool:
    """Whether a pair's failing tests need both mutants to explain them.

    Args:
        pair: The tests that fail with both mutants applied.
        first: The tests that fail with the first mutant alone.
        second: The tests that fail with the second alone.

    Returns:
        True when each mutant alone fails a test of ``pair`` that the other alone passes:
        fixing either file leaves that test failing, and neither bug's failures are all the pair's.
    """
    failing, a, b = set(pair), set(first), set(second)
    return bool(failing & (a - b)) and bool(failing & (b - a))


def pair_order(mutants: Sequence[Mutant], seed: int) -> list[tuple[int, int]]:
    """Index pairs of ``mutants`` in different files, in an order shuffled by ``seed``."""
    pairs = [
        (i, j)
        for i in range(len(mutants))
        for j in range(i + 1, len(mutants))
        if mutants[i].site.path != mutants[j].site.path
    ]
    random.Random(seed).shuffle(pairs)
    return pairs
