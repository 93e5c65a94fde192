"""``CodeRepair``: fix a repository so that hidden tests pass (multi-turn, SWE-bench style).

The agent gets an issue and a repository in a sandbox (``sandbox="local"`` or
``"docker"``), works with the tools of :class:`~agentgym.envs.coding.tools.RepoTools`
and calls ``submit``. The outcome is graded by :class:`~agentgym.envs.coding.grading.Grader`
in a fresh sandbox: FAIL_TO_PASS tests must pass and PASS_TO_PASS tests keep passing.

Reward components (``info["reward_components"]``):

* outcome ``resolved`` (weight 1; binary), ``graded`` (FAIL_TO_PASS fraction when every
  PASS_TO_PASS test passes; weight 1 instead of ``resolved`` with ``reward_mode="fraction"``),
  and the metrics ``f2p_fraction``, ``p2p_fraction``, ``tampered`` (1 when the grader
  distrusted the run);
* process (metrics unless weighted through ``process_rewards``): ``test_progress``
  (change in the visible tests' pass fraction since the previous ``run_tests``),
  ``parseable_edits`` (+1 a turn whose edits all parse, -1 one that broke a file),
  ``well_formed``, ``tool_errors``, ``step_cost``.

``env.last_grade`` holds the full :class:`~agentgym.envs.coding.grading.GradeResult`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from agentgym.env import AgentEnv, TurnRecord
from agentgym.envs.coding.grading import Grader, GradeResult
from agentgym.envs.coding.repo import (
    check_task,
    solution_files,
    test_paths_of,
    visible_test_files,
)
from agentgym.envs.coding.sandboxing import SandboxProvider, SandboxSpec
from agentgym.envs.coding.testdeps import DEPS_DIR, dependencies_folder
from agentgym.envs.coding.tools import EditRecord, RepoTools
from agentgym.messages import Action, Message
from agentgym.parsing import format_tool_call
from agentgym.rewards import Rubric, step_cost, tool_errors, well_formed_calls
from agentgym.sandboxes import Sandbox
from agentgym.tasks import Task, TaskSet


def load_source(source: str) -> TaskSet:
    """The coding tasks of ``source``.

    ``curated`` (falls back to ``humaneval`` while the curated set is absent), ``humaneval``,
    ``synth`` (the shipped synthesized tasks), a ``.jsonl`` path (full tasks, or the compact records
    of :mod:`agentgym.envs.coding.dataset`, also ``.jsonl.gz``/``.jsonl.xz``), or ``module:function``.
    """
    if source == "synth":
        from agentgym.envs.coding.dataset import load_shipped

        return load_shipped()
    if source.endswith((".jsonl", ".jsonl.gz", ".jsonl.xz")):
        from agentgym.envs.coding.dataset import is_compact, load

        if is_compact(source):
            return load(source)
    if source == "curated":
        try:
            from agentgym.envs.coding.curated import load_curated
        except ImportError:
            return load_source("humaneval")
        return load_curated()
    if source == "humaneval":
        from agentgym.envs.coding.humaneval import load_humaneval

        return load_humaneval()
    if source.endswith(".jsonl") or ":" in source:
        return TaskSet.from_source(source)
    raise ValueError(
        f"unknown task source {source!r}: use 'curated', 'humaneval', 'synth', a .jsonl path or 'module:function'"
    )


def write_tree(root: str | Path, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> text) under the host directory ``root``."""
    for path, content in files.items():
        dest = Path(root, path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(content)


def _resolved(env: CodingEnv) -> float:
    """1 when every FAIL_TO_PASS test passes and every PASS_TO_PASS test still passes, else 0."""
    return float(env._grade().resolved)


def _graded(env: CodingEnv) -> float:
    """Fraction of FAIL_TO_PASS tests passing, when every PASS_TO_PASS test still passes (else 0)."""
    return env._grade().graded


def _f2p_fraction(env: CodingEnv) -> float:
    """Fraction of FAIL_TO_PASS tests passing."""
    return env._grade().f2p_fraction


def _p2p_fraction(env: CodingEnv) -> float:
    """Fraction of PASS_TO_PASS tests passing."""
    return env._grade().p2p_fraction


def _tampered(env: CodingEnv) -> float:
    """1 when the grader distrusted the test run (exit status, canary or report mismatch), else 0."""
    return float(not env._grade().trusted)


class CodingEnv(AgentEnv):
    """Shared machinery of the coding environments: sandbox provider, grader, rubric."""

    def __init__(
        self,
        source: str = "curated",
        sandbox: SandboxSpec = "local",
        sandbox_options: dict[str, Any] | None = None,
        reward_mode: Literal["binary", "fraction"] = "binary",
        grade_timeout: float = 120.0,
        integrity_scan: bool = True,
        **kwargs: Any,
    ):
        if reward_mode not in ("binary", "fraction"):
            raise ValueError(f"reward_mode must be 'binary' or 'fraction', got {reward_mode!r}")
        self.source = source
        self.reward_mode = reward_mode
        self.provider = SandboxProvider(sandbox, **(sandbox_options or {}))
        self.grader = Grader(self.provider, timeout=grade_timeout, scan=integrity_scan)
        self.last_grade: GradeResult | None = None
        super().__init__(**kwargs)

    def load_tasks(self) -> TaskSet:
        """The tasks of ``source`` (see :func:`load_source`)."""
        return load_source(self.source)

    def build_rubric(self) -> Rubric:
        """The outcome components and metrics listed in the module docstring."""
        binary = self.reward_mode == "binary"
        rubric = Rubric()
        rubric.add("resolved", _resolved, weight=1.0 if binary else 0.0)
        rubric.add("graded", _graded, weight=0.0 if binary else 1.0)
        rubric.add("f2p_fraction", _f2p_fraction, weight=0.0)
        rubric.add("p2p_fraction", _p2p_fraction, weight=0.0)
        rubric.add("tampered", _tampered, weight=0.0)
        rubric.add("well_formed", well_formed_calls, weight=0.0, kind="process")
        rubric.add("tool_errors", tool_errors, weight=0.0, kind="process")
        rubric.add("step_cost", step_cost, weight=0.0, kind="process")
        return rubric

    def setup(self, task: Task) -> None:
        """Check the task's format and forget the previous episode's grade."""
        check_task(task)
        self.last_grade = None

    def step(self, action: Action) -> tuple[list[Message], float, bool, bool, dict[str, Any]]:
        """As :meth:`AgentEnv.step`; the final step's info also has ``integrity``.

        ``info["integrity"]`` says why the grader distrusted the run (integrity flags, then
        anomalies); it is empty when the run was clean.
        """
        obs, reward, terminated, truncated, info = super().step(action)
        if "termination_reason" in info:
            grade = self.last_grade
            info["integrity"] = [*grade.integrity, *grade.anomalies] if grade is not None else []
        return obs, reward, terminated, truncated, info

    def _grade(self) -> GradeResult:
        if self.last_grade is None:
            self.last_grade = self.grade_episode()
        return self.last_grade

    def grade_episode(self) -> GradeResult:
        """Grade the episode's submission (computed once, by the first outcome component)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the episode, then the sandbox provider (its pool); idempotent."""
        try:
            super().close()
        finally:
            self.provider.close()


class CodeRepairEnv(RepoTools, CodingEnv):
    """Fix a repository so its hidden tests pass; tools read, search, edit and test it in a sandbox."""

    system_prompt = (
        "You are an expert software engineer working in a Python repository. Resolve the issue by editing the "
        "repository's source files with the tools: explore the code, make a minimal fix, run the visible tests, "
        "then call submit. Hidden tests will check your fix; changes to test files are not graded."
    )
    default_max_turns = 30

    def __init__(
        self,
        source: str = "curated",
        sandbox: SandboxSpec = "local",
        *,
        test_timeout: float = 60.0,
        reject_syntax_errors: bool = False,
        **kwargs: Any,
    ):
        """Configure the repository tools, the sandbox and the grader.

        Args:
            source: task source when ``tasks`` is not given: ``curated``, ``humaneval``, a ``.jsonl`` path
                or ``module:function`` returning tasks in the coding format (see ``repo.py``).
            sandbox: ``local`` (bubblewrap), ``docker``, or a callable ``files_dir -> Sandbox``.
            sandbox_options: extra arguments for the sandbox backend (``config``, ``pool_size``, ``image``...).
            reward_mode: ``binary`` (resolved or not) or ``fraction`` (FAIL_TO_PASS fraction).
            test_timeout: seconds a ``run_tests`` call may take.
            reject_syntax_errors: refuse edits that leave a ``.py`` file unparseable (default: apply and warn).
            grade_timeout: seconds the grading test run may take.
            integrity_scan: scan the diff for tampering constructs before grading (layer 3 of the grader).
            **kwargs: :class:`~agentgym.env.AgentEnv` arguments (``tasks``, ``split``, ``max_turns``, ...).
        """
        # Commands are bounded by the sandbox's own timeouts; the thread timeout is only a backstop.
        kwargs.setdefault("tool_timeout", test_timeout + 30.0)
        self.test_timeout = test_timeout
        self.reject_syntax_errors = reject_syntax_errors
        self._workspace: Sandbox | None = None
        self.edit_log: list[EditRecord] = []
        self.test_log: list[tuple[int, float]] = []
        self.visible_tests: list[str] = []
        self.test_paths: list[str] = []
        self.python_path = "."
        super().__init__(source=source, sandbox=sandbox, **kwargs)

    def build_rubric(self) -> Rubric:
        """The shared coding rubric plus ``test_progress`` and ``parseable_edits``."""
        rubric = super().build_rubric()
        rubric.add("test_progress", _test_progress, weight=0.0, kind="process")
        rubric.add("parseable_edits", _parseable_edits, weight=0.0, kind="process")
        return rubric

    @property
    def workspace(self) -> Sandbox:
        """The episode's sandbox holding the repository."""
        if self._workspace is None:
            raise RuntimeError("no active episode: call reset() first")
        return self._workspace

    def setup(self, task: Task) -> None:
        """Acquire a sandbox holding the task's repository; reset the per-episode logs."""
        super().setup(task)
        self.sandbox_killed = False
        self.agent_ran = False
        self.edit_log, self.test_log = [], []
        self.visible_tests = visible_test_files(task)
        self.test_paths = test_paths_of(task)
        files = task.setup["files"]
        self.python_path = ".:src" if any(p.startswith("src/") for p in files) else "."
        deps = dependencies_folder(task)  # installed once per project (cached), before the sandbox starts
        with tempfile.TemporaryDirectory(prefix="agentgym-repo-") as tmp:
            write_tree(tmp, files)
            self._workspace = self.provider.acquire(tmp)
        if deps is not None:
            self._workspace.upload(deps, DEPS_DIR)  # where `run_tests` finds them (outside the repository)

    def teardown(self) -> None:
        """Return the episode's sandbox to the provider."""
        ws, self._workspace = self._workspace, None
        if ws is not None:
            self.provider.release(ws)

    def opening_messages(self, task: Task) -> list[Message]:
        """The base messages, with the repository's file list after the issue."""
        messages = super().opening_messages(task)
        files = "\n".join(sorted(task.setup["files"]))
        messages[-1]["content"] = f"{task.prompt}\n\nThe repository's files:\n{files}"
        return messages

    def grade_episode(self) -> GradeResult:
        """Grade the workspace (a 0 with the reason when the agent's code killed its sandbox)."""
        if self.sandbox_killed:
            verifier = self.task.verifier
            return GradeResult(
                dict.fromkeys(verifier.get("fail_to_pass", []), "missing"),
                dict.fromkeys(verifier.get("pass_to_pass", []), "missing"),
                anomalies=["the agent's code killed its sandbox during the episode"],
            )
        return self.grader.grade_workspace(self.task, self.workspace, agent_ran=self.agent_ran)

    def oracle_turns(self, task: Task) -> list[Action]:
        """Write (or delete) each file of the reference solution, then submit."""
        turns: list[Action] = []
        for path, content in sorted(solution_files(task).items()):
            if content is None:
                turns.append(format_tool_call("delete_file", {"path": path}))
            else:
                turns.append(format_tool_call("write_file", {"path": path, "content": content}))
        turns.append(format_tool_call("submit", {}))
        return turns

    def noop_turns(self, task: Task) -> list[Action]:
        """Submit the repository unchanged."""
        return [format_tool_call("submit", {})]


def _test_progress(env: CodeRepairEnv, turn: TurnRecord) -> float:
    """Change in the visible tests' pass fraction since the previous run_tests (0 for the first run)."""
    now = [frac for t, frac in env.test_log if t == turn.index]
    if not now:
        return 0.0
    before = [frac for t, frac in env.test_log if t < turn.index]
    return now[-1] - (before[-1] if before else now[0])


def _parseable_edits(env: CodeRepairEnv, turn: TurnRecord) -> float:
    """+1 when this turn's edits all leave Python files parseable, -1 when one does not, 0 without edits."""
    edits = [e for e in env.edit_log if e.turn == turn.index]
    if not edits:
        return 0.0
    return 1.0 if all(e.parses for e in edits) else -1.0
