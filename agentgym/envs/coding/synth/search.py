"""The search: mutate a project site by site and keep the mutants its own tests catch.

1. Run the whole suite once with line tracing (lines run at import time count for every
   test). Tests whose node ids change with the hash seed (parameters built from sets)
   are left out: a grader could not find them again.
2. For each mutation site (:mod:`~agentgym.envs.coding.mutations`, in a seeded order,
   round-robin over operators): write the mutant, run only the passing tests that
   execute the mutated lines, and if any fails, run the whole suite to classify every
   test. Keep the mutant when some tests fail (FAIL_TO_PASS) and the others still pass
   (PASS_TO_PASS); :mod:`.task` writes it as a task. Every task records its distance
   (:func:`~.harder.distance`: does a failing test name the mutated function?); with
   ``far``, only far ones are kept.
3. With ``pairs``: apply two kept mutants of different files together (a seeded order of
   the pairs), run the whole suite, and keep the pair as a two-bug task when its failing
   tests need both mutants to explain them (:func:`~.harder.is_two_bugs`). Its fix restores
   both files; it is graded like any task and counted under the ``pair`` row.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agentgym.sandboxes import SandboxConfig
from agentgym.tasks import Task

from .. import mutations
from ..grading import Grader
from ..repo import CONFIG_NAMES, is_test_file, package_dirs
from ..sandboxing import SandboxProvider
from .baseline import NO_TEST_FILES, run_baseline
from .check import grade_task
from .config import read_pytest_config, suite_files
from .deps import (
    InstalledDeps,
    cache_root,
    declared_requirements,
    install_requirements,
    top_level_modules,
    with_package_metadata,
)
from .errors import SynthError
from .harder import Mutant, distance, is_two_bugs, pair_order
from .runner import PytestRun, PytestRunner, SandboxKind, open_sandbox, project_runner, suite_limits
from .stats import PAIR, OperatorStats, Outcome, yield_table
from .task import mutants_task

GIVE_UP_AFTER = 3
"""The grader rejecting this many tasks in a row, all for the same reason, before any is kept ends the project."""
GIVE_UP_ANY = 8
"""... or this many for any reasons (a grader that disagrees with every task wastes the project's time)."""


def _first_flag(reason: str) -> str:
    """A rejection's first reason without the quoted paths, test ids and timing that vary from task to task."""
    first = reason.split("; ")[0]
    first = re.sub(r"'[^']*'|\"[^\"]*\"|\S+::\S+|\(after [^)]*\)|\(at [^)]*\)", "*", first)
    return re.sub(r"[()]", "", first).strip()


@dataclass
class SynthConfig:
    """How many mutants to try and how to run the tests."""

    max_tasks: int = 50
    """Stop after this many tasks are kept."""
    max_per_operator: int = 25
    """Try at most this many mutants per operator (the yield denominator)."""
    seed: int = 0
    """Seeds the order in which sites are tried; the same seed gives the same tasks."""
    operators: Sequence[str] = tuple(mutations.OPERATORS)
    """Mutation operators to use (names from :data:`~agentgym.envs.coding.mutations.OPERATORS`)."""
    sandbox: SandboxKind = "local"
    """``local`` (bubblewrap), ``docker``, or ``none`` (host subprocesses; trusted code only)."""
    limits: SandboxConfig | None = None
    """The sandbox's limits (default: :func:`~.runner.suite_limits` for the longest run)."""
    test_cmd: Sequence[str] | None = None
    """Command prefix that runs pytest (default: ``python3 -m pytest`` in the sandbox)."""
    baseline_timeout: float = 900.0
    """Seconds for the traced baseline run."""
    mutant_timeout: float | None = None
    """Seconds per mutant run (default: 3x the traced baseline, at least 20)."""
    name: str | None = None
    """Project name used in task ids (default: ``"project"``)."""
    grade: bool = True
    """Grade every kept task with the coding environments' grader (fix scores 1, base 0) and keep
    only those it agrees with (the others are ``rejected``); not with ``sandbox="none"``."""
    grade_timeout: float = 120.0
    """Seconds per grading run (the coding environments' default)."""
    install_deps: bool = True
    """Install the project's declared runtime and test dependencies (:mod:`.deps`) for its tests."""
    deps_cache: str | None = None
    """Where installed dependencies are cached (default: :func:`~.deps.cache_root`)."""
    pip_args: Sequence[str] = ()
    """Extra pip options for that install, e.g. ``["--no-index", "--find-links", DIR]``."""
    pairs: int = 0
    """Also keep up to this many two-bug tasks (beyond ``max_tasks``): two kept mutants in different files
    applied together, whose failing tests need both to explain them. At most ``max_per_operator`` pairs are
    tried, in a seeded order, and a mutant is in one kept pair at most."""
    far: bool = False
    """Keep only bugs whose failing tests never name the mutated function, so they are reached through other
    code (the others count as ``near``). Every task records ``metadata["distance"]`` either way."""


@dataclass
class SynthResult:
    """The tasks kept, and what happened to every mutant tried."""

    tasks: list[Task]
    stats: dict[str, OperatorStats]
    """Operator name -> counts by outcome."""
    baseline_passed: int
    """Passing tests with stable ids (the FAIL_TO_PASS and PASS_TO_PASS candidates)."""
    baseline_not_passed: int
    """Tests that did not pass on the original project."""
    seconds: float
    deps: InstalledDeps | None = None
    """The installed dependencies the tests ran with (None: the project declares none)."""

    def table(self) -> str:
        """The per-operator yield as a Markdown table (:func:`~.stats.yield_table`)."""
        return yield_table(self.stats)


MAX_MUTATED_BYTES = 256 * 1024
"""Larger modules are not mutated (generated tables, vendored code)."""


def source_files(files: Mapping[str, str]) -> list[str]:
    """Python files that mutations may touch.

    Not tests, configuration, ``__main__.py`` or huge modules, and only importable ones
    (top-level modules and modules of packages) when the project has packages: scripts
    in ``bin/`` or ``tools/`` are run by no test.
    """
    packages = package_dirs(p for p in files if not is_test_file(p))
    return sorted(
        p
        for p, text in files.items()
        if p.endswith(".py")
        and not is_test_file(p)
        and p.split("/")[-1] not in (*CONFIG_NAMES, "__main__.py")
        and len(text) <= MAX_MUTATED_BYTES
        and (not packages or "/" not in p or p.rsplit("/", 1)[0] in packages)
    )


def candidate_order(sites: Mapping[str, list[mutations.Site]], cfg: SynthConfig) -> list[mutations.Site]:
    """The order sites are tried in: per operator shuffled by ``cfg.seed`` and capped, then round-robin."""
    rng = random.Random(cfg.seed)
    queues = []
    for op in cfg.operators:
        ops = list(sites.get(op, []))
        rng.shuffle(ops)
        queues.append(ops[: cfg.max_per_operator])
    longest = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]


def _quiet(message: str) -> None:
    pass


def synthesize(
    files: Mapping[str, str], cfg: SynthConfig | None = None, *, log: Callable[[str], None] = _quiet
) -> SynthResult:
    """Mutate a project and keep the mutants its tests catch, as tasks.

    Args:
        files: The project with its tests, as ``{relpath: content}``.
        cfg: What to try and where to run (default: :class:`SynthConfig`).
        log: Receives one line per step (the baseline, each task kept).

    Returns:
        The tasks and the per-operator counts.

    Raises:
        ValueError: An unknown operator in ``cfg.operators``.
        SynthError: The project cannot be used (its category says why: no tests, a missing
            dependency, collection errors, no passing test, a timeout ...).
    """
    cfg = cfg or SynthConfig()
    unknown = set(cfg.operators) - set(mutations.OPERATORS)
    if unknown:
        raise ValueError(f"unknown operators {sorted(unknown)}; choose from {', '.join(mutations.OPERATORS)}")
    project = cfg.name or "project"
    started = time.monotonic()
    files = with_package_metadata(files)
    sources = source_files(files)
    tests = sorted(p for p in files if p.endswith(".py") and is_test_file(p) and p.split("/")[-1] != "conftest.py")
    limits = cfg.limits or suite_limits(max(cfg.baseline_timeout, cfg.mutant_timeout or 0.0))
    pytest_config = read_pytest_config(files)
    if pytest_config.describe():
        log(pytest_config.describe())
    if not suite_files(files, pytest_config):
        raise SynthError("no-tests", NO_TEST_FILES)
    deps = _install(files, cfg, project, log) if cfg.install_deps else None
    grader = None
    if cfg.grade and cfg.sandbox != "none":
        grader = Grader(SandboxProvider(cfg.sandbox, pool_size=1), timeout=cfg.grade_timeout)
    elif cfg.grade:
        log("grading: sandbox 'none' cannot run the coding grader; check the tasks with `agentgym tasks validate`")
    sandbox, python = open_sandbox(cfg.sandbox, files, limits)
    try:
        with sandbox:
            test_cmd = cfg.test_cmd or [*python, "-m", "pytest"]
            runner = project_runner(sandbox, files, test_cmd, deps.path if deps else None)
            log(f"baseline: running {project}'s {len(runner.paths or [])} test files with line tracing ...")
            base, passed = run_baseline(runner, files, sources, cfg.baseline_timeout, log)
            timeout = cfg.mutant_timeout or max(20.0, 3 * base.result.duration)
            log(
                f"baseline: {len(passed)} passed, {len(base.not_passed)} not passed, {len(base.passed - passed)} "
                f"passing tests left out (their ids change with the hash seed), {base.result.duration:.1f}s"
            )
            modules = {p: mutations.parse(files[p]) for p in sources}
            by_op: dict[str, list[mutations.Site]] = {op: [] for op in cfg.operators}
            for p in sources:
                for site in mutations.find_sites(modules[p], p, cfg.operators):
                    by_op[site.operator].append(site)
            stats = {op: OperatorStats() for op in cfg.operators}
            if cfg.pairs > 0:
                stats[PAIR] = OperatorStats()
            search = _Search(cfg, project, files, tests, runner, passed, timeout, deps, grader, log)
            seen: set[tuple[str, str]] = set()
            kept: list[Mutant] = []
            for site in candidate_order(by_op, cfg):
                if len(search.tasks) >= cfg.max_tasks:
                    break
                mutant = mutations.mutate(modules[site.path], site.operator, site.index)
                if mutant == files[site.path] or (site.path, mutant) in seen:
                    continue
                seen.add((site.path, mutant))
                outcome, run = _try_mutant(runner, files, site, mutant, _covering(base, site, passed), passed, timeout)
                if run is None:
                    stats[site.operator].record(outcome)
                    continue
                one = Mutant(site, mutant, frozenset(passed - run.passed))
                outcome = search.consider([one], run, [])
                stats[site.operator].record(outcome)
                if outcome == "kept":
                    kept.append(one)
            if cfg.pairs > 0:
                _search_pairs(search, kept, stats[PAIR])
    finally:
        if grader is not None:
            grader.provider.close()
    return SynthResult(search.tasks, stats, len(passed), len(base.not_passed), time.monotonic() - started, deps)


def _install(
    files: Mapping[str, str], cfg: SynthConfig, project: str, log: Callable[[str], None]
) -> InstalledDeps | None:
    """Install the project's declared dependencies (cached); None when it declares none."""
    reqs = declared_requirements(files)
    if reqs.skipped:
        log(f"dependencies: not installed (pytest, its plugins, tools): {', '.join(reqs.skipped)}")
    if not reqs.install:
        return None
    log(f"dependencies: installing {', '.join(reqs.install)} (from {'; '.join(reqs.sources)}) ...")
    deps = install_requirements(
        reqs.install,
        cfg.deps_cache or cache_root(),
        project=project,
        top_level=top_level_modules(files),
        pip_args=cfg.pip_args,
    )
    log(f"dependencies: {deps.describe()}")
    return deps


@dataclass
class _Search:
    """What every candidate of one search shares: the project, its runner and grader, the tasks kept so far."""

    cfg: SynthConfig
    project: str
    files: Mapping[str, str]
    tests: list[str]
    runner: PytestRunner
    passed: set[str]
    timeout: float
    deps: InstalledDeps | None
    grader: Grader | None
    log: Callable[[str], None]

    def __post_init__(self) -> None:
        self.tasks: list[Task] = []
        self.rng = random.Random(self.cfg.seed)
        """Writes the issue texts, in the order tasks are made."""
        self.rejections: list[str] = []

    def consider(self, bugs: Sequence[Mutant], run: PytestRun, groups: Sequence[Sequence[str]]) -> Outcome:
        """Make the task of ``bugs`` from the run that classified them, and keep it (``kept``) if it may be.

        It is not kept when it is near and only far bugs are wanted (``near``), or the grader
        rejects it (``rejected``). ``groups``: the failing tests each bug explains (a pair's).
        """
        f2p, p2p = sorted(self.passed - run.passed), sorted(self.passed & run.passed)
        how_far = distance(self.files, [b.site for b in bugs], f2p)
        if self.cfg.far and how_far == "near":
            return "near"
        task = mutants_task(
            self.project,
            self.files,
            [(b.site, b.text) for b in bugs],
            fail_to_pass=f2p,
            pass_to_pass=p2p,
            messages={t: run.tests.get(t, {}).get("message", "") for t in f2p},
            test_paths=self.tests,
            rng=self.rng,
            seed=self.cfg.seed,
            requirements=self.deps.installed if self.deps else (),
            distance=how_far,
            groups=groups,
        )
        problems = grade_task(task, self.grader) if self.grader else []
        if problems:
            self.log(f"rejected {task.id}: {problems[0][:300]}")
            self.rejections.append(problems[0])
            same = len({_first_flag(r) for r in self.rejections}) == 1
            if not self.tasks and len(self.rejections) >= (GIVE_UP_AFTER if same else GIVE_UP_ANY):
                raise SynthError("grader-rejects", f"{len(self.rejections)} tasks in a row: {problems[0]}")
            return "rejected"
        self.tasks.append(task)
        what = "; ".join(b.site.description for b in bugs)
        self.log(f"kept {task.id}: {len(f2p)} fail-to-pass, {len(p2p)} pass-to-pass, {how_far} ({what})")
        return "kept"


def _search_pairs(search: _Search, kept: Sequence[Mutant], stats: OperatorStats) -> None:
    """Try pairs of kept mutants in different files; keep up to ``cfg.pairs`` two-bug tasks."""
    cfg = search.cfg
    used: set[int] = set()
    found = 0
    for i, j in pair_order(kept, cfg.seed):
        if found >= cfg.pairs or stats.tried >= cfg.max_per_operator:
            break
        if i in used or j in used:
            continue
        a, b = kept[i], kept[j]
        outcome, run = _try_pair(search.runner, search.files, a, b, search.passed, search.timeout)
        if run is not None:
            pair_f2p = search.passed - run.passed
            groups = [sorted(pair_f2p & (x.fail_to_pass - y.fail_to_pass)) for x, y in ((a, b), (b, a))]
            outcome = search.consider([a, b], run, groups)
        stats.record(outcome)
        if outcome == "kept":
            used |= {i, j}
            found += 1


def _try_pair(
    runner: PytestRunner, files: Mapping[str, str], a: Mutant, b: Mutant, passed: set[str], timeout: float
) -> tuple[Outcome, PytestRun | None]:
    """Classify two mutants applied together; for ``kept``, also the run. The original files are restored."""
    runner.sandbox.write_file(a.site.path, a.text)
    runner.sandbox.write_file(b.site.path, b.text)
    try:
        run = runner.run(timeout=timeout)
    finally:
        runner.sandbox.write_file(a.site.path, files[a.site.path])
        runner.sandbox.write_file(b.site.path, files[b.site.path])
    if run.result.timed_out:
        return "timeout", None
    if run.collect_errors or not passed & run.passed or not passed - run.passed:
        return "broken", None
    if not is_two_bugs(passed - run.passed, a.fail_to_pass, b.fail_to_pass):
        return "overlap", None
    return "kept", run


def _covering(base: PytestRun, site: mutations.Site, passed: set[str]) -> set[str]:
    """The passing tests that execute the site's lines (all of them when a line runs at import)."""
    lines = base.coverage.get(site.path, {})
    covering: set[str | None] = set()
    for n in range(site.line, site.end_line + 1):
        covering |= lines.get(n, set())
    return set(passed) if None in covering else passed & {t for t in covering if t is not None}


def _try_mutant(
    runner: PytestRunner,
    files: Mapping[str, str],
    site: mutations.Site,
    mutant: str,
    selected: set[str],
    passed: set[str],
    timeout: float,
) -> tuple[Outcome, PytestRun | None]:
    """Classify one mutant; for ``kept``, also the full run. The original file is restored."""
    if not selected:
        return "uncovered", None
    runner.sandbox.write_file(site.path, mutant)
    try:
        quick = runner.run(select=sorted(selected), timeout=timeout)
        if quick.result.timed_out:
            return "timeout", None
        if quick.collect_errors:
            return "broken", None
        if not selected - quick.passed:
            return "survived", None
        # tests outside ``selected`` do not run the mutated lines; run them anyway to be sure
        full = quick if selected == passed else runner.run(timeout=timeout)
    finally:
        runner.sandbox.write_file(site.path, files[site.path])
    if full.result.timed_out:
        return "timeout", None
    if full.collect_errors or not passed & full.passed or not passed - full.passed:
        return "broken", None
    return "kept", full
