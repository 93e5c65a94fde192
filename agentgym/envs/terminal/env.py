"""``Terminal``: an agent works in a persistent shell on a sandboxed machine; a Harbor verifier grades it.

Each episode plays one Harbor-format task (see :mod:`agentgym.harbor`): the task's starting
state is built in a fresh sandbox (``sandbox="local"`` bubblewrap or ``"docker"``) with the
workdir of its Dockerfile (usually ``/app``), the agent gets one bash session there
(:class:`~agentgym.sandboxes.ShellSession`: cwd, variables, functions and aliases persist across
turns) and the tools ``run`` (one command, a per-command timeout, output truncated head and tail),
``read_file`` and ``write_file`` (``file_tools=True``) and ``submit``. The episode ends on submit,
the turn limit, or the agent's time budget (``[agent] timeout_sec`` of ``task.toml``, capped by
``time_limit``); then :func:`~agentgym.envs.terminal.verify.verify` runs ``tests/test.sh`` in a
fresh sandbox the agent never touched.

Reward components (``info["reward_components"]``):

* outcome ``reward`` (weight 1): the verifier's reward (``reward.txt``, or ``reward.json``'s
  ``reward``/mean); each ``reward.json`` entry also appears as ``verifier/<name>`` (metric, weight
  0); ``tampered`` (metric): 1 when the run was distrusted;
* process (weight 0 unless given through ``process_rewards``): ``command_errors`` (-1 per command
  of the turn that failed or timed out), ``step_cost`` (-1 a turn), ``well_formed``, ``tool_errors``.

``info["verifier"]`` on the final step holds the verification's details (exit code, output tail,
error, integrity flags). ``agentgym tasks validate Terminal-v0`` checks that every task's
``solution/solve.sh`` scores 1 and doing nothing 0.
"""

from __future__ import annotations

import base64
import logging
import shlex
import time
from pathlib import Path
from typing import Any

from agentgym.env import AgentEnv, TurnRecord
from agentgym.envs.coding.sandboxing import SandboxProvider, SandboxSpec
from agentgym.envs.terminal.build import missing_host_packages, replay, task_image
from agentgym.envs.terminal.verify import VERIFIER_DIRS, Verdict, verify
from agentgym.errors import SandboxError
from agentgym.harbor import entry_bytes, load_tasks, unsupported_reasons
from agentgym.messages import Action
from agentgym.parsing import format_tool_call
from agentgym.rewards import Rubric, step_cost, tool_errors, well_formed_calls
from agentgym.sandboxes import Sandbox, SandboxConfig, ShellSession
from agentgym.tasks import Task, TaskSet
from agentgym.tools import Tool, tool

log = logging.getLogger(__name__)

BUILTIN_TASKS = Path(__file__).parent / "tasks"
"""The built-in shell tasks, one Harbor folder each."""
MAX_FILE_BYTES = 256 * 1024


def load_source(source: str | Path, *, ubuntu_on_debian: bool = False, errors: dict[str, str] | None = None) -> TaskSet:
    """``builtin`` (the shipped Harbor folders), a Harbor task folder or folder of them, or a ``.jsonl`` of tasks.

    ``errors``: folders that are no readable task are left out and said there (else they raise).
    """
    if str(source) == "builtin":
        return load_tasks(BUILTIN_TASKS, name="terminal")
    path = Path(source)
    if path.is_dir():
        return load_tasks(path, ubuntu_on_debian=ubuntu_on_debian, errors=errors)
    return TaskSet.from_source(str(source))


def _reward(env: TerminalEnv) -> float:
    """The verifier's reward (0 when it did not run cleanly)."""
    return env.verdict().reward


def _tampered(env: TerminalEnv) -> float:
    """1 when the run was distrusted (integrity flags), else 0."""
    return float(bool(env.verdict().integrity))


def _command_errors(env: TerminalEnv, turn: TurnRecord) -> float:
    """-1 for each ``run`` of this turn that exited non-zero or timed out."""
    return float(-sum(1 for t, ok in env.command_log if t == turn.index and not ok))


class TerminalEnv(AgentEnv):
    """Solve a task at a bash prompt in a sandbox; a hidden Harbor verifier grades the final state."""

    system_prompt = (
        "You are an expert at the Linux command line, working on a Debian machine as an unprivileged user "
        "(no root, no network). Use the tools to run shell commands (the shell keeps its directory and "
        "variables between commands), inspect and change files, and call submit when the task is done."
    )
    default_max_turns = 30

    def __init__(
        self,
        source: str | Path = "builtin",
        sandbox: SandboxSpec = "local",
        *,
        sandbox_options: dict[str, Any] | None = None,
        command_timeout: float = 30.0,
        max_command_timeout: float = 180.0,
        file_tools: bool = True,
        verifier_timeout: float | None = None,
        setup_timeout: float = 300.0,
        pool_size: int = 1,
        ubuntu_on_debian: bool = False,
        **kwargs: Any,
    ):
        """Configure the tasks, the sandbox backend and the tools.

        Args:
            source: ``builtin``, a Harbor task folder (or a folder of them), or a ``.jsonl`` of Harbor tasks.
            sandbox: ``local`` (bubblewrap on this host) or ``docker``.
            sandbox_options: extra arguments for the backend (e.g. ``config``).
            command_timeout: default seconds one ``run`` may take.
            max_command_timeout: the most a ``run`` may ask for.
            file_tools: also offer ``read_file`` and ``write_file``.
            verifier_timeout: seconds ``test.sh`` may run (default: the task's ``[verifier] timeout_sec``).
            setup_timeout: seconds each Dockerfile ``RUN`` step may take.
            pool_size: sandboxes kept warm per image.
            ubuntu_on_debian: plan Harbor tasks built ``FROM ubuntu:*`` on the Debian base image instead of
                leaving them out (their apt packages by the same names).
            **kwargs: :class:`~agentgym.env.AgentEnv` arguments (``tasks``, ``split``, ``max_turns``, ...).
        """
        if not (isinstance(sandbox, str) and sandbox in ("local", "docker")):
            raise ValueError(f"sandbox must be 'local' or 'docker', got {sandbox!r}")
        self.source = source
        self.backend = sandbox
        self.sandbox_options = dict(sandbox_options or {})
        self.command_timeout = command_timeout
        self.max_command_timeout = max_command_timeout
        self.file_tools = file_tools
        self.verifier_timeout = verifier_timeout
        self.setup_timeout = setup_timeout
        self.pool_size = pool_size
        self.ubuntu_on_debian = ubuntu_on_debian
        self._providers: dict[tuple[str, str, bool], SandboxProvider] = {}
        self._sandbox: Sandbox | None = None
        self._shell: ShellSession | None = None
        self._verdict: Verdict | None = None
        self._budget: float | None = None
        self.sandbox_died = False
        self.command_log: list[tuple[int, bool]] = []
        self.unusable: dict[str, list[str]] = {}
        """Task id -> why it cannot run on this backend (left out of ``task_set``)."""
        self._user_time_limit: float | None = kwargs.get("time_limit")
        super().__init__(**kwargs)

    # ----- tasks ----------------------------------------------------------------------------
    def load_tasks(self) -> TaskSet:
        """The tasks of ``source`` that can run on this backend (the others are in ``unusable``)."""
        errors: dict[str, str] = {}
        tasks = load_source(self.source, ubuntu_on_debian=self.ubuntu_on_debian, errors=errors)
        self.unusable.update({k: [f"not a readable task: {v}"] for k, v in errors.items()})
        return self._usable(tasks)

    def _usable(self, tasks: TaskSet) -> TaskSet:
        host_missing: dict[str, list[str]] = {}
        for task in tasks:
            reasons = unsupported_reasons(task, self.backend) if task.setup.get("format") == "harbor" else []
            if task.setup.get("format") != "harbor":
                reasons = ["not a Harbor-format shell task (load it with agentgym.harbor.load_tasks)"]
            elif self.backend == "local" and task.setup.get("apt"):
                key = ",".join(sorted(task.setup["apt"]))
                if key not in host_missing:
                    host_missing[key] = missing_host_packages(list(task.setup["apt"]))
                if host_missing[key]:
                    reasons.append(
                        f"apt packages missing on this host for the local backend: {' '.join(host_missing[key])} "
                        f"(sudo apt-get install {' '.join(host_missing[key])}, or use sandbox='docker')"
                    )
            if reasons:
                self.unusable[task.id] = reasons
        if self.unusable:
            log.warning(
                "%d of %d tasks cannot run on the %s backend: %s",
                len(self.unusable),
                len(tasks),
                self.backend,
                "; ".join(f"{k}: {v[0]}" for k, v in list(self.unusable.items())[:5]),
            )
        usable = tasks.filter(lambda t: t.id not in self.unusable)
        if len(usable) == 0:
            raise ValueError(
                f"none of the {len(tasks)} tasks can run on the {self.backend} backend: "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in list(self.unusable.items())[:5])
            )
        return usable

    # ----- rubric and tools -----------------------------------------------------------------
    def build_rubric(self) -> Rubric:
        """The outcome and process components of the module docstring."""
        rubric = Rubric()
        rubric.add("reward", _reward, weight=1.0)
        rubric.add("tampered", _tampered, weight=0.0)
        rubric.add("command_errors", _command_errors, weight=0.0, kind="process")
        rubric.add("well_formed", well_formed_calls, weight=0.0, kind="process")
        rubric.add("tool_errors", tool_errors, weight=0.0, kind="process")
        rubric.add("step_cost", step_cost, weight=0.0, kind="process")
        return rubric

    def get_tools(self) -> list[Tool]:
        """``run`` and ``submit``, plus ``read_file``/``write_file`` with ``file_tools``."""
        tools = super().get_tools()
        if self.file_tools:
            return tools
        return [t for t in tools if t.name not in ("read_file", "write_file")]

    # ----- episode --------------------------------------------------------------------------
    def _provider(self, task: Task, verifier: bool) -> SandboxProvider:
        image = task_image(task) if self.backend == "docker" else ""
        key = (task.setup["workdir"], image, verifier)
        if key not in self._providers:
            options: dict[str, Any] = {**self.sandbox_options, "workdir": task.setup["workdir"]}
            if verifier:
                options["extra_dirs"] = VERIFIER_DIRS
            if image:
                options["image"] = image
            config = options.pop("config", None) or SandboxConfig(
                timeout=self.command_timeout, output_limit=256 * 1024, memory_mb=1024, disk_mb=512
            )
            self._providers[key] = SandboxProvider(self.backend, config=config, pool_size=self.pool_size, **options)
        return self._providers[key]

    @property
    def sandbox(self) -> Sandbox:
        """The episode's sandbox (the agent's machine)."""
        if self._sandbox is None:
            raise RuntimeError("no active episode: call reset() first")
        return self._sandbox

    def setup(self, task: Task) -> None:
        """Start a sandbox, replay the task's starting state in it, open the shell session."""
        self._verdict = None
        self.sandbox_died = False
        self.command_log = []
        agent_budget = float(task.metadata.get("agent_timeout", 600.0))
        self._budget = min(agent_budget, self._user_time_limit) if self._user_time_limit else agent_budget
        self.time_limit = self._budget
        self._sandbox = self._provider(task, verifier=False).acquire(None)
        env = replay(self._sandbox, task, timeout=self.setup_timeout)
        self._shell = ShellSession(self._sandbox, cwd=task.setup["workdir"], env=env, timeout=self.command_timeout)
        self._started = time.monotonic()  # the agent's budget starts now, not before the build

    def teardown(self) -> None:
        """Close the episode's sandbox."""
        sandbox, self._sandbox, self._shell = self._sandbox, None, None
        if sandbox is not None:
            self._provider(self.task, verifier=False).release(sandbox)

    def opening_messages(self, task: Task) -> list[Any]:
        """The base messages, with the working directory named after the instruction."""
        messages = super().opening_messages(task)
        messages[-1]["content"] = f"{task.prompt}\n\n(Your shell starts in {task.setup['workdir']}.)"
        return messages

    def _remaining(self) -> float:
        if self._budget is None:
            return self.max_command_timeout
        return max(1.0, self._budget - (time.monotonic() - self._started))

    def _agent_failed(self, error: SandboxError) -> str:
        """The agent's commands took the sandbox down: the episode ends, scored 0."""
        self.sandbox_died = True
        self.end("sandbox_died")
        return f"Error: the machine stopped responding ({error}); the episode is over."

    @tool
    def run(self, command: str, timeout: float | None = None) -> str:
        """Run a bash command in your shell session; returns its exit code and output.

        Args:
            command: the command line (bash syntax; cd, variables and functions persist between calls)
            timeout: seconds to allow (default 30); the command is killed after it
        """
        if self._shell is None:
            raise RuntimeError("no active episode")
        if not command.strip():
            raise ValueError("command is empty; give a shell command to run")
        seconds = min(float(timeout or self.command_timeout), self.max_command_timeout, self._remaining())
        try:
            result = self._shell.run(command, timeout=seconds)
        except SandboxError as e:
            self.command_log.append((self.turn, False))
            return self._agent_failed(e)
        self.command_log.append((self.turn, result.ok))
        status = f"[timed out after {seconds:g} s]" if result.timed_out else f"[exit code {result.exit_code}]"
        body = result.output.rstrip("\n")
        return f"{body}\n{status}" if body else status

    def _path(self, path: str) -> str:
        if not path.strip():
            raise ValueError("path is empty")
        if path.startswith("/"):
            return path
        cwd = self._shell.cwd if self._shell is not None else self.task.setup["workdir"]
        return f"{cwd.rstrip('/')}/{path}"

    @tool
    def read_file(self, path: str) -> str:
        """Show a text file.

        Args:
            path: file path (relative to the shell's current directory, or absolute)
        """
        try:
            data = self.sandbox.read_file(self._path(path))
        except SandboxError as e:
            return self._agent_failed(e)
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"{path} has {len(data)} bytes; read parts of it with run (head, sed -n, grep)")
        if b"\0" in data:
            raise ValueError(f"{path} is binary; inspect it with run (file, xxd, od)")
        return data.decode("utf-8", "replace") or f"{path} is empty."

    @tool
    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a text file with the given content.

        Args:
            path: file path (relative to the shell's current directory, or absolute)
            content: the whole new content of the file
        """
        full = self._path(path)
        try:
            self.sandbox.write_file(full, content)
        except SandboxError as e:
            return self._agent_failed(e)
        return f"Wrote {len(content.encode())} bytes to {full}."

    @tool(terminal=True)
    def submit(self) -> str:
        """Finish the task: your machine's final state is graded."""
        return "Submitted."

    # ----- grading --------------------------------------------------------------------------
    def verdict(self) -> Verdict:
        """The episode's verification (run once, by the first outcome component)."""
        if self._verdict is None:
            self._verdict = self._verify()
        return self._verdict

    def _verify(self) -> Verdict:
        if self.sandbox_died:
            return Verdict(integrity=["the agent's commands took its sandbox down"], error="no machine left to grade")
        provider = self._provider(self.task, verifier=True)
        fresh = provider.acquire(None)
        try:
            try:
                return verify(self.sandbox, self.task, fresh, timeout=self.verifier_timeout)
            except SandboxError as e:
                # The agent's files ran there: its fault as much as the machine's. Scored 0, said why.
                return Verdict(integrity=[f"a sandbox failed during verification: {e}"], error=str(e))
        finally:
            provider.release(fresh)

    def step(self, action: Action) -> tuple[list[Any], float, bool, bool, dict[str, Any]]:
        """As :meth:`AgentEnv.step`; the final step's info also has ``verifier`` and ``verifier/<name>`` components."""
        obs, reward, terminated, truncated, info = super().step(action)
        if "termination_reason" in info and self._verdict is not None:
            info["verifier"] = self._verdict.to_info()
            for name, value in self._verdict.components.items():
                info["reward_components"][f"verifier/{name}"] = value
        return obs, reward, terminated, truncated, info

    # ----- reference episodes ---------------------------------------------------------------
    def oracle_turns(self, task: Task) -> list[Action]:
        """Write ``solution/`` to ``/tmp/solution`` and run ``solve.sh`` there from the workdir; then submit."""
        files: dict[str, dict[str, Any]] = (task.solution or {}).get("files", {})
        if "solve.sh" not in files:
            raise NotImplementedError(f"task {task.id} has no solution/solve.sh")
        lines = ["rm -rf /tmp/solution && mkdir -p /tmp/solution"]
        for rel, entry in sorted(files.items()):
            dest = shlex.quote(f"/tmp/solution/{rel}")
            data = base64.b64encode(entry_bytes(entry)).decode()
            lines.append(f'mkdir -p "$(dirname {dest})" && echo {data} | base64 -d > {dest}')
        exports = "".join(
            f"export {k}={shlex.quote(v)}; "
            for k, v in (task.solution or {}).get("env", {}).items()
            if k.isidentifier()
        )
        lines.append(f"cd {shlex.quote(task.setup['workdir'])} && ({exports}bash /tmp/solution/solve.sh)")
        budget = float(task.metadata.get("agent_timeout", 600.0))
        run = format_tool_call("run", {"command": "\n".join(lines), "timeout": min(budget, self.max_command_timeout)})
        return [run, format_tool_call("submit", {})]

    def noop_turns(self, task: Task) -> list[Action]:
        """Submit the machine as it was built."""
        return [format_tool_call("submit", {})]

    def close(self) -> None:
        """Close the episode and every sandbox pool; idempotent."""
        try:
            super().close()
        finally:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()
