"""A coding task's test dependencies, present wherever its tests run (``run_tests`` and grading).

A synthesized task records the packages its project's tests import in
``metadata["test_requirements"]`` (hypothesis, freezegun, a helper library ...). They are
installed on the host with pip, once, into the same cached folder synthesis used
(:func:`agentgym.envs.coding.synth.deps.install_requirements`, keyed by the project and the
requirements), and the folder is uploaded into each sandbox at :data:`DEPS_DIR`: nothing
inside a sandbox touches the network.

The harness appends that folder to ``sys.path`` *after* the interpreter's own folders (the
sandbox's pytest and standard library cannot be shadowed by it) and before it classifies
code, so it counts as library code, like site-packages. Unlike site-packages it lies on a
writable file system; the harness therefore flags changed code that writes, renames, links
or removes anything inside it (see ``_runner.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from agentgym.errors import GraderError
from agentgym.tasks import Task

if TYPE_CHECKING:
    from agentgym.sandboxes import Sandbox

DEPS_DIR = "/tmp/agentgym-testdeps"
"""Where a task's installed test dependencies are uploaded inside a sandbox (outside the workspace)."""

_lock = threading.Lock()
_folders: dict[tuple[str, tuple[str, ...]], Path] = {}


def test_requirements(task: Task) -> list[str]:
    """The requirement strings a task's tests need (``[]`` for most tasks)."""
    reqs = task.metadata.get("test_requirements") or []
    if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
        raise ValueError(
            f"task {task.id}: metadata['test_requirements'] must be a list of requirement strings, got {reqs!r}"
        )
    return list(reqs)


def dependencies_folder(task: Task) -> Path | None:
    """The host folder holding the task's test dependencies, installed on first use; None when it needs none.

    Raises:
        GraderError: pip could not install some of them (no network and no cached folder, or a
            requirement that does not resolve): the tests could not run as their task says, which
            is the environment's failure, never the agent's.
    """
    reqs = test_requirements(task)
    if not reqs:
        return None
    project = str(task.metadata.get("project") or "project")
    key = (project, tuple(sorted(reqs)))
    with _lock:
        if key in _folders and _folders[key].exists():
            return _folders[key]
        from agentgym.envs.coding.synth.deps import INSTALLED, cache_root, install_requirements, top_level_modules

        folder = INSTALLED.get(key)  # synthesis in this process installed them (any cache root, pip options)
        if folder is not None and folder.exists():
            _folders[key] = folder
            return folder
        files = {**task.setup["files"], **task.verifier.get("hidden_tests", {})}
        deps = install_requirements(reqs, cache_root(), project=project, top_level=top_level_modules(files))
        if deps.failed:
            raise GraderError(
                f"task {task.id}: its test dependencies {', '.join(deps.failed)} could not be installed with pip "
                f"into {deps.path}; the tests cannot run without them. Install them once with network access "
                "(any run of the task does it, or `agentgym tasks validate` on its task set), or point "
                "$AGENTGYM_CACHE at a cache that holds them."
            )
        _folders[key] = deps.path
        return deps.path


def provide(sandbox: Sandbox, task: Task) -> bool:
    """Upload the task's test dependencies into ``sandbox`` at :data:`DEPS_DIR`; False when it needs none."""
    folder = dependencies_folder(task)
    if folder is None:
        return False
    sandbox.upload(folder, DEPS_DIR)
    return True
