"""Grading a shell episode where the agent cannot reach: Harbor's ``tests/test.sh`` in a fresh sandbox.

The order (:func:`verify`):

1. Every process the agent left in its sandbox is killed (``Sandbox.kill_processes``): nothing it
   started can wait for ``/tests`` to appear or rewrite a reward file later.
2. The agent's final workdir is archived by the sandbox's helper (links kept as links, never
   followed). A symlink that points into ``/tests``, ``/logs``, ``/solution``, ``/proc`` or
   ``/dev`` scores 0 (``integrity``) without running the verifier: it could only serve to read
   the hidden tests or to aim the verifier's writes.
3. A **fresh** sandbox (same image, same workdir, plus empty ``/tests`` and ``/logs``) receives
   the archive and the task's ``tests/``; nothing else of the agent's comes along (not ``/tmp``,
   not ``$HOME``, no process, no shell state). Its root is read-only, so the interpreter and
   tools the verifier runs are the image's own, never the agent's.
4. ``bash --noprofile --norc /tests/test.sh`` runs with a fixed environment: system ``PATH``
   (after the offline stand-ins of :mod:`~agentgym.envs.terminal.offline` for ``apt-get``, ``pip``,
   ``uv``, ...), an empty ``HOME`` of its own, no ``BASH_ENV``/``ENV``; cwd the workdir. Python gets
   ``PYTHONSAFEPATH=1`` and ``PYTHONPATH=/tests``: the workdir is *not* on ``sys.path``, so no
   file the agent left can shadow ``pytest``, ``json``, or fill in a module that the verifier's
   Python imports only when it exists (``org``, ``nt``, a ``pytest11`` entry point); a test that
   imports the agent's modules says so itself (``sys.path.insert(0, "/app")``, pytest's
   ``-o pythonpath=.``). Then every process left is killed.
5. The reward is read from ``/logs/verifier/reward.txt`` (one finite number) or
   ``reward.json`` (a map of names to finite numbers; ``reward`` is the total when present,
   else their mean). A verifier that times out, exits non-zero or writes no readable reward
   scores 0, with the reason.

Known limit, inherent to the format: a ``test.sh`` that executes the agent's programs gives them
its own rights for that run. agentgym's own tasks run them under ``timeout`` and kill every
other process (``kill -9 -1``) before writing the reward.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.envs.terminal.offline import SHIM_DIR, SHIMS
from agentgym.harbor import write_tree
from agentgym.sandboxes import Sandbox
from agentgym.tasks import Task

GUARDED = ("/tests", "/logs", "/solution", "/proc", "/dev", "/sys")
"""Where a symlink in the agent's workdir may not point."""
VERIFIER_DIRS = ("/tests", "/logs")
VERIFIER_ENV = {
    "PATH": f"{SHIM_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp/.verifier-home",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONSAFEPATH": "1",
    "PYTHONPATH": "/tests",
    "PYTHONNOUSERSITE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "BASH_ENV": "",
    "ENV": "",
    "CDPATH": "",
    "TERM": "dumb",
}


def verifier_env(task: Task) -> dict[str, str]:
    """:data:`VERIFIER_ENV` plus the task's ``[verifier.env]``.

    The task's variables may not change the fixed ones (``PATH``, ``HOME``, the ``PYTHON*`` ones, ...) nor set
    any ``LD_*`` or ``BASH_*`` one.
    """
    extra = {
        k: v
        for k, v in (task.verifier.get("env") or {}).items()
        if isinstance(k, str)
        and isinstance(v, str)
        and k.isidentifier()
        and k not in VERIFIER_ENV
        and not k.startswith(("LD_", "BASH_", "PYTHON"))
    }
    return {**extra, **VERIFIER_ENV}


@dataclass
class Verdict:
    """The outcome of one verification."""

    reward: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    """Named numbers from ``reward.json`` (empty for ``reward.txt``)."""
    ran: bool = False
    """The verifier script ran (False: the run was refused before, see ``integrity``/``error``)."""
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""
    """The tail of the verifier's stdout and stderr."""
    error: str | None = None
    """Why the reward is 0 without the verifier's say (timeout, crash, unreadable reward)."""
    integrity: list[str] = field(default_factory=list)
    """Why the run was distrusted (a symlink into a guarded path, the agent killed its sandbox)."""

    def to_info(self) -> dict[str, Any]:
        """JSON-ready summary for ``info["verifier"]``."""
        return {
            "reward": self.reward,
            "components": dict(self.components),
            "ran": self.ran,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "error": self.error,
            "integrity": list(self.integrity),
            "output": self.output[-2000:],
        }


def _links(blob: bytes, workdir: str) -> dict[str, str]:
    """``{absolute path: link target}`` of the archive's symbolic links, placed under ``workdir``."""
    links = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        for member in tar:
            if member.issym():
                links[posixpath.normpath(posixpath.join(workdir, member.name))] = member.linkname
    return links


def resolve(path: str, links: dict[str, str], limit: int = 40) -> str | None:
    """Where ``path`` leads when every link of ``links`` on the way is followed, as the kernel would.

    Components are walked one by one (``..`` after a link applies to the link's target, a leading
    ``//`` is ``/``); paths outside the archive are taken as they are (the verifier's root is the
    image's, read-only, with no link into a guarded path). None when the links loop.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = "/" + "/".join([*current, part])
        target = links.get(candidate)
        if target is None:
            current.append(part)
            continue
        hops += 1
        if hops > limit:
            return None
        rest = [p for p in target.split("/") if p not in ("", ".")]
        if target.startswith("/"):
            current = []
        parts = rest + parts
    return "/" + "/".join(current)


def guarded_links(blob: bytes, workdir: str) -> list[str]:
    """The archive's symlinks that lead into :data:`GUARDED`, to ``/`` itself, or loop (followed through each other)."""
    links = _links(blob, workdir)
    found = []
    for where, target in sorted(links.items()):
        end = resolve(where, links)
        if end is None or end == "/" or any(end == g or end.startswith(g + "/") for g in GUARDED):
            found.append(f"{where} -> {target}" + ("" if end is None else f" (leads to {end})"))
    return found


def disk_links(sandbox: Sandbox, workdir: str) -> list[str]:
    """The links under ``workdir`` that the sandbox's own ``realpath`` resolves to ``/`` or into :data:`GUARDED`.

    Run in the fresh verifier sandbox after the workdir is restored and before the tests are copied
    in, so every link on the way is followed as the kernel will follow it: the agent's and the image's.
    """
    script = (
        'find "$1" -type l -exec sh -c \'for l; do printf "%s\\0%s\\0" "$l" "$(realpath -m -- "$l")"; done\' sh {} +'
    )
    result = sandbox.exec(["/bin/sh", "-c", script, "sh", workdir], env=VERIFIER_ENV, timeout=120)
    if not result.ok:
        return [f"the links under {workdir} could not be resolved ({result.output[-200:]})"]
    fields = result.stdout.split("\0")
    found = []
    for link, end in zip(fields[0::2], fields[1::2], strict=False):
        if end == "/" or any(end == g or end.startswith(g + "/") for g in GUARDED):
            found.append(f"{link} (leads to {end})")
    return found


def parse_reward(txt: bytes | None, js: bytes | None) -> tuple[float, dict[str, float], str | None]:
    """``(reward, components, error)`` from the bytes of ``reward.txt`` and ``reward.json`` (either may be None)."""
    if js is not None:
        try:
            data = json.loads(js.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return 0.0, {}, f"reward.json is not JSON ({e})"
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            data = {"reward": data}
        if not isinstance(data, dict) or not data:
            return 0.0, {}, "reward.json must be a non-empty map of names to numbers"
        parts: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return 0.0, {}, f"reward.json: {key!r} is not a finite number ({value!r})"
            parts[str(key)] = float(value)
        total = parts["reward"] if "reward" in parts else sum(parts.values()) / len(parts)
        return total, parts, None
    if txt is not None:
        text = txt.decode("utf-8", "replace").strip()
        try:
            value = float(text)
        except ValueError:
            return 0.0, {}, f"reward.txt does not hold a number: {text[:80]!r}"
        if not math.isfinite(value):
            return 0.0, {}, f"reward.txt holds {text[:20]!r}, not a finite number"
        return value, {}, None
    return 0.0, {}, "the verifier wrote neither /logs/verifier/reward.txt nor reward.json"


def _read(sandbox: Sandbox, path: str) -> bytes | None:
    try:
        return sandbox.read_file(path)
    except OSError:
        return None


def verify(agent: Sandbox, task: Task, fresh: Sandbox, timeout: float | None = None) -> Verdict:
    """Grade the agent's sandbox with the task's verifier, run in the ``fresh`` sandbox (see the module docstring).

    Raises:
        SandboxError: the *fresh* sandbox failed before the agent's files ran there (infrastructure).
        Failures of the agent's sandbox are the caller's to judge.
    """
    workdir: str = task.setup["workdir"]
    verdict = Verdict()
    agent.kill_processes()
    try:
        blob = agent.archive(workdir)
    except OSError as e:  # a file or folder the agent made unreadable to its owner
        verdict.error = f"the workdir could not be copied for grading ({e}); files must stay readable by their owner"
        return verdict
    links = guarded_links(blob, workdir)
    if links:
        verdict.integrity.append("symlinks into guarded paths: " + "; ".join(links[:5]))
        verdict.error = "the workdir links into the verifier's paths; not run"
        return verdict
    fresh.restore_archive(blob, workdir)
    # The archive check cannot see the image's own links (``/usr/share/zoneinfo/posix/Etc -> ../Etc``):
    # resolve every link once more where it will be read, on the fresh sandbox's disk, before any test exists.
    on_disk = disk_links(fresh, workdir)
    if on_disk:
        verdict.integrity.append("symlinks into guarded paths: " + "; ".join(on_disk[:5]))
        verdict.error = "the workdir links into the verifier's paths; not run"
        return verdict
    with tempfile.TemporaryDirectory(prefix="agentgym-tests-") as tmp:
        write_tree(Path(tmp), task.verifier.get("tests", {}))
        fresh.upload(tmp, "/tests")
    fresh.exec(["mkdir", "-p", "/logs/verifier", "/logs/agent", VERIFIER_ENV["HOME"], SHIM_DIR], timeout=30)
    for name, script in SHIMS.items():  # offline stand-ins for apt-get, pip, uv, ... (see offline.py)
        fresh.write_file(f"{SHIM_DIR}/{name}", script)
    fresh.exec(["chmod", "-R", "755", SHIM_DIR], timeout=30)
    seconds = float(timeout if timeout is not None else task.verifier.get("timeout", 600.0))
    result = fresh.exec(
        ["/bin/bash", "--noprofile", "--norc", "/tests/test.sh"],
        cwd=workdir,
        env=verifier_env(task),
        timeout=seconds,
    )
    verdict.ran = True
    verdict.exit_code, verdict.timed_out, verdict.output = result.exit_code, result.timed_out, result.output[-4000:]
    fresh.kill_processes()  # nothing the verifier started may touch the reward after it exits
    reward, parts, error = parse_reward(
        _read(fresh, "/logs/verifier/reward.txt"), _read(fresh, "/logs/verifier/reward.json")
    )
    if result.timed_out:
        error = f"the verifier timed out after {seconds:g} s"
    elif result.exit_code != 0:
        error = f"the verifier exited with status {result.exit_code}"
    verdict.components = parts
    if error is None:
        verdict.reward = reward
    else:
        verdict.error = error
    return verdict


__all__ = ["GUARDED", "Verdict", "disk_links", "guarded_links", "parse_reward", "resolve", "verifier_env", "verify"]
