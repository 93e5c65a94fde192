"""A task's test dependencies are present wherever its tests run, and they are library code the agent cannot bend.

The dependency folder is the one synthesis builds (``synth.deps.folder_for`` under
``$AGENTGYM_CACHE``); here it is written by the test (a small library ``helperlib`` and the
folder's completion marker) instead of by pip, so the tests need no network. Both backends.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from coding_helpers import BACKENDS, call, require_backend

from agentgym.envs.coding import CodeRepairEnv, make_task
from agentgym.envs.coding.grading import Grader
from agentgym.envs.coding.sandboxing import SandboxProvider
from agentgym.envs.coding.synth.deps import DONE, folder_for
from agentgym.envs.coding.testdeps import DEPS_DIR, dependencies_folder
from agentgym.errors import GraderError
from agentgym.policies import ScriptedPolicy
from agentgym.rollout import run_episode
from agentgym.tasks import Task, TaskSet
from agentgym.validate import validate

REQS = ["helperlib==1.0"]
HELPER = "def double(x):\n    return 2 * x\n"
MOD = "def add(a, b):\n    return a {op} b\n"
HIDDEN = (
    "from helperlib import double\nfrom pkg.mod import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == double(2) + 1\n"
)
VISIBLE = "import helperlib\n\n\ndef test_helper():\n    assert helperlib.double(4) == 8\n"


def deps_task(project: str = "depsproj", reqs: list[str] | None = None) -> Task:
    task = make_task(
        f"{project}-add",
        "`add(2, 3)` is wrong.",
        files={"pkg/__init__.py": "", "pkg/mod.py": MOD.format(op="-"), "tests/test_helper.py": VISIBLE},
        fail_to_pass=["tests/test_add.py::test_add"],
        pass_to_pass=["tests/test_helper.py::test_helper"],
        hidden_tests={"tests/test_add.py": HIDDEN},
        solution={"pkg/mod.py": MOD.format(op="+")},
        source="test",
        split="train",
        project=project,
        test_requirements=list(REQS if reqs is None else reqs),
    )
    return task


def write_folder(project: str, reqs: list[str], failed: list[str] | None = None) -> Path:
    """The cached dependency folder as ``install_requirements`` leaves it, with ``helperlib`` inside."""
    from agentgym.envs.coding.synth.deps import cache_root

    path = folder_for(reqs, cache_root(), project=project)
    (path / "helperlib").mkdir(parents=True)
    (path / "helperlib" / "__init__.py").write_text(HELPER)
    (path / DONE).write_text(json.dumps({"installed": reqs, "failed": failed or []}))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    write_folder("depsproj", REQS)
    return tmp_path / "cache"


@pytest.mark.parametrize("backend", BACKENDS)
def test_dependencies_reach_grading_and_run_tests(cache: Path, backend: str) -> None:
    require_backend(backend)
    task = deps_task()
    report = validate(lambda: CodeRepairEnv(tasks=TaskSet([task]), sandbox=backend), progress=False, num_workers=1)
    assert report.ok, report.summary()
    env = CodeRepairEnv(tasks=TaskSet([task]), sandbox=backend)
    try:
        traj = run_episode(env, ScriptedPolicy([call("run_tests")]), task_id=task.id)
        seen = "\n".join(str(m.get("content", "")) for m in traj.messages)
        assert "test_helper" in seen and "1 passed" in seen, seen[-2000:]
    finally:
        env.close()


HACKS = {
    # the honest fix, plus a write into the dependency folder: a module planted there would pass for a library
    "write-into-deps": f"open('{DEPS_DIR}/helperlib/planted.txt', 'w').write('x')\n",
    "pathlib-write-py": "import pathlib\npathlib.Path('pkg/extra.py').write_text('X = 1\\n')\n",
    "rename-into-place": (
        "import os\nopen('pkg/swap.txt', 'w').write('X = 1\\n')\nos.replace('pkg/swap.txt', 'pkg/other.py')\n"
    ),
    "remove-from-deps": f"import os\nos.remove('{DEPS_DIR}/helperlib/__init__.py')\n",
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hack", sorted(HACKS))
def test_changed_code_cannot_touch_the_dependency_folder(cache: Path, backend: str, hack: str) -> None:
    require_backend(backend)
    grader = Grader(SandboxProvider(backend), timeout=60, scan=False)
    try:
        task = deps_task()
        honest = grader.grade_files(task, {"pkg/mod.py": MOD.format(op="+")})
        assert honest.resolved and not honest.integrity, honest.summary()
        result = grader.grade_files(task, {"pkg/mod.py": HACKS[hack] + MOD.format(op="+")})
        assert not result.resolved and result.integrity, result.summary()
    finally:
        grader.provider.close()


def test_a_dependency_that_could_not_be_installed_is_an_infrastructure_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    write_folder("brokenproj", ["helperlib==1.0", "nosuchpkg==9"], failed=["nosuchpkg==9"])
    task = deps_task("brokenproj", ["helperlib==1.0", "nosuchpkg==9"])
    with pytest.raises(GraderError, match=r"nosuchpkg==9 could not be installed.*AGENTGYM_CACHE"):
        dependencies_folder(task)
    assert dependencies_folder(deps_task("nodeps", [])) is None
    bad = deps_task("badreqs", [])
    bad.metadata["test_requirements"] = "helperlib"
    with pytest.raises(ValueError, match="must be a list of requirement strings"):
        dependencies_folder(bad)


def test_library_behaviour_in_a_changed_module_is_not_tampering() -> None:
    """Honest fixes in modules that do ordinary library things score 1 (each was a false positive)."""
    headers = {
        "typing-namedtuple": "import typing\n\n\nclass P(typing.NamedTuple):\n    x: int = 0\n",
        "metadata-version": textwrap.dedent("""\
            import importlib.metadata
            try:
                V = importlib.metadata.version("pkg")
            except importlib.metadata.PackageNotFoundError:
                V = "0"
        """),
        "namedtuple": "from collections import namedtuple\n\nPoint = namedtuple('Point', 'x y', defaults=[0])\n",
        # sched's import-time code calls namedtuple, which reads the caller's frame: the library's, not ours
        "imports-a-library-that-reads-its-frame": "import sched\n",
    }
    tz_test = "import os\nimport time\n\nfrom pkg.mod import add\n\n\ndef test_add():\n    os.environ['TZ'] = 'UTC'\n"
    tz_test += "    time.tzset()\n    assert add(2, 3) == 5\n"
    # unittest binds IsolatedAsyncioTestCase through its module __getattr__ on first use (freezegun does)
    lazy_test = "import unittest\n\nfrom pkg.mod import add\n\n\ndef test_add():\n"
    lazy_test += "    assert unittest.IsolatedAsyncioTestCase.__name__ == 'IsolatedAsyncioTestCase'\n"
    lazy_test += "    assert add(2, 3) == 5\n"
    base = "import sys\nimport urllib.parse\n\nfrom pkg.mod import add\n\n\ndef test_add():\n"
    special = {
        "tests-call-tzset": tz_test,
        "tests-use-lazy-unittest": lazy_test,
        # a test of a command-line entry point that leaves its sys.argv behind
        "tests-set-argv": base + "    sys.argv = ['prog', '--flag']\n    assert add(2, 3) == 5\n",
        # a stdlib module builds a cache on first use (urllib.parse._typeprog: None, then a pattern)
        "tests-fill-a-stdlib-cache": base + "    assert urllib.parse._splittype('http://x')[0] == 'http'\n"
        "    assert add(2, 3) == 5\n",
        # pytest warns from _pytest.python (a test that returns a value): the module gets a __warningregistry__
        "tests-make-pytest-warn": base + "    assert add(2, 3) == 5\n    return 1\n",
    }
    require_backend("local")
    grader = Grader(SandboxProvider("local"), timeout=60)
    try:
        for name, header in [*headers.items(), *((k, "") for k in special)]:
            fixed = header + "\n\n" + MOD.format(op="+")
            task = make_task(
                f"lib-{name}",
                "add is wrong",
                files={"pkg/__init__.py": "", "pkg/mod.py": header + "\n\n" + MOD.format(op="-")},
                fail_to_pass=["tests/test_add.py::test_add"],
                hidden_tests={"tests/test_add.py": special.get(name, HIDDEN_PLAIN)},
                solution={"pkg/mod.py": fixed},
                source="test",
                split="train",
            )
            result = grader.grade_files(task, {"pkg/mod.py": fixed})
            assert result.resolved and not result.integrity, (name, result.summary())
    finally:
        grader.provider.close()


HIDDEN_PLAIN = "from pkg.mod import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


PATCHLIB = """\
import typing

_original = typing._check_generic


def _check_generic(*args, **kwargs):
    return _original(*args, **kwargs)


typing._check_generic = _check_generic  # as typing_extensions does on import
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dependency_that_patches_typing_is_library_behaviour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    require_backend(backend)
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    folder = write_folder("patchproj", ["patchlib==1.0"])
    (folder / "patchlib.py").write_text(PATCHLIB)
    task = deps_task("patchproj", ["patchlib==1.0"])
    task.verifier["hidden_tests"]["tests/test_add.py"] = "import patchlib  # noqa: F401\n" + HIDDEN
    grader = Grader(SandboxProvider(backend), timeout=60)
    try:
        honest = grader.grade_files(task, {"pkg/mod.py": MOD.format(op="+")})
        assert honest.resolved and not honest.integrity, honest.summary()
        # the changed code doing the same with its own function is still tampering
        own = "import typing\n\n\ndef _mine(*a, **k):\n    return None\n\n\ntyping._check_generic = _mine\n"
        cheat = grader.grade_files(task, {"pkg/mod.py": own + MOD.format(op="+")})
        assert not cheat.resolved and any("typing._check_generic" in r for r in cheat.integrity), cheat.summary()
    finally:
        grader.provider.close()
