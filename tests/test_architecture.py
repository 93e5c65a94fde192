"""The import direction ``trainer -> core <- envs -> sandboxes``, checked by reading the source.

The layers, by path under ``agentgym/``:

* **errors** (``errors.py``): the exceptions every layer shares; imports nothing of agentgym.
* **core** (every other top-level module, ``__init__.py`` included): the environment contract,
  tools, rewards, rollout, evaluation, the CLI. It never imports the trainer, nor the ML
  stack (torch, transformers, accelerate, peft, vllm, trl) -- not even inside a function:
  the trainer's policies are named as ``"module:attr"`` strings (``policies.py``) and loaded
  only when asked for. It imports ``agentgym.envs`` and ``agentgym.sandboxes`` only where
  :data:`CORE_EXCEPTIONS` says so, each with its reason.
* **envs** (``envs/``): environments; import the core, the errors and the sandboxes, never
  the trainer.
* **sandboxes** (``sandboxes/``): import nothing of agentgym but ``agentgym.errors`` and
  each other.
* **trainer** (``trainer/``): may import all of the above.

Outside the trainer, a third-party import at module level must be a required dependency
(``[project].dependencies``); optional packages (docker, Playwright, ...) are imported inside
the function that needs them, so ``import agentgym`` works with the required ones alone.

Every ``import`` statement counts: at module level, inside functions, under
``if TYPE_CHECKING:`` (a dependency for readers and type checkers even when not at run
time), relative ones resolved. Imports by name are not statements and are not seen: the
registry's ``"agentgym.envs.tooluse:ToolUseEnv"`` entries, the CLI's extension modules and
the ``"hf"``/``"vllm"`` policies. They are how the core reaches plugins without depending
on them.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from agentgym.testing import require

PACKAGE = Path(__file__).resolve().parents[1] / "agentgym"
ML_STACK = frozenset({"torch", "transformers", "accelerate", "peft", "vllm", "trl"})
SKIPPED = ("agentgym/envs/coding/curated_data/",)
"""Task data (repositories the coding tasks ship), not agentgym's code."""
SHIPPED = frozenset(
    {
        "agentgym/sandboxes/_server.py",
        "agentgym/envs/coding/_runner.py",
        "agentgym/envs/coding/_function_runner.py",
        "agentgym/envs/coding/synth/_pytest_plugin.py",
    }
)
"""Programs sent as source into a sandbox and run there by its own interpreter: agentgym never
imports them, so their third-party imports (pytest) are the sandbox image's, not agentgym's
dependencies. The layer rules apply to them as to any module."""


@dataclass(frozen=True)
class Allowed:
    """An import of ``imported`` (or a submodule) by the core module ``importer``, and why."""

    importer: str
    imported: str
    lazy_only: bool
    reason: str


CORE_EXCEPTIONS = (
    Allowed(
        "agentgym/__init__.py",
        "agentgym.envs",
        lazy_only=False,
        reason="importing agentgym registers the built-in environments; agentgym/envs/__init__.py names each "
        "class as a 'module:Class' string, so no environment module loads until it is made",
    ),
    Allowed(
        "agentgym/testing.py",
        "agentgym.sandboxes",
        lazy_only=True,
        reason="the pytest helpers probe whether Docker sandboxes can run here; only tests call them",
    ),
)


@dataclass(frozen=True)
class Import:
    """One imported module, where and how it is imported."""

    path: str  # e.g. "agentgym/env.py"
    line: int
    module: str  # absolute, e.g. "agentgym.sandboxes.base"
    lazy: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`


@dataclass(frozen=True)
class Violation:
    """An import that breaks a rule."""

    path: str
    line: int
    module: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module}: {self.rule}"


def _module_name(package: Path, file: Path) -> str:
    parts = list(file.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(package: Path, module: str) -> bool:
    path = package.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports_of(package: Path, file: Path) -> list[Import]:
    rel = file.relative_to(package.parent).as_posix()
    name = _module_name(package, file)
    here = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(rel, node.lineno, alias.name, lazy, type_only))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here[: len(here) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            modules = []
            for alias in node.names:
                # `from agentgym import envs` imports the module agentgym.envs.
                sub = f"{base}.{alias.name}"
                modules.append(sub if alias.name != "*" and _is_module(package, sub) else base)
            found.extend(Import(rel, node.lineno, m, lazy, type_only) for m in dict.fromkeys(modules))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, lazy, True)
            for child in node.orelse:
                visit(child, lazy, type_only)
        else:
            inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                visit(child, inner, type_only)

    visit(ast.parse(file.read_text(encoding="utf-8"), filename=rel), False, False)
    return found


def collect_imports(package: Path) -> list[Import]:
    """Every import statement of every module under ``package`` (a folder named like the package)."""
    files = [
        f for f in sorted(package.rglob("*.py")) if not f.relative_to(package.parent).as_posix().startswith(SKIPPED)
    ]
    return [i for f in files for i in _imports_of(package, f)]


def _layer(package: str, module: str) -> str:
    """``errors``, ``core``, ``envs``, ``sandboxes``, ``trainer`` or ``external``."""
    parts = module.split(".")
    if parts[0] != package:
        return "external"
    if len(parts) == 1:
        return "core"
    return {"errors": "errors", "envs": "envs", "sandboxes": "sandboxes", "trainer": "trainer"}.get(parts[1], "core")


def _layer_of_path(package: str, path: str) -> str:
    return _layer(package, path.removesuffix(".py").removesuffix("/__init__").replace("/", "."))


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def check(
    package: Path, required: set[str], allowed: tuple[Allowed, ...] = CORE_EXCEPTIONS
) -> tuple[list[Violation], set[Allowed]]:
    """The imports under ``package`` that break a rule, and the entries of ``allowed`` in use.

    ``required`` holds the import names of the required third-party dependencies.
    """
    name = package.name
    required = {_normalize(r) for r in required}
    violations: list[Violation] = []
    used: set[Allowed] = set()
    for imp in collect_imports(package):
        src, dst = _layer_of_path(name, imp.path), _layer(name, imp.module)
        top = imp.module.split(".")[0]

        def bad(rule: str, imp: Import = imp) -> None:
            violations.append(Violation(imp.path, imp.line, imp.module, rule))

        before = len(violations)
        if src == "errors" and dst != "external":
            bad("agentgym.errors imports nothing of agentgym (every layer, sandboxes included, imports it)")
        elif src == "core" and dst == "trainer":
            bad("the core never imports the trainer; name a trainer object as a 'module:attr' string")
        elif src == "core" and top in ML_STACK:
            bad("the core never imports the ML stack, not even inside a function; that is the trainer's")
        elif src == "core" and dst in ("envs", "sandboxes"):
            entry = next((a for a in allowed if a.importer == imp.path and _within(imp.module, a.imported)), None)
            if entry is None:
                bad(f"the core imports agentgym.{dst} only where CORE_EXCEPTIONS allows it (with a reason)")
            elif entry.lazy_only and not imp.lazy:
                bad(f"allowed only inside a function (CORE_EXCEPTIONS: {entry.reason})")
            else:
                used.add(entry)
        elif src == "envs" and dst == "trainer":
            bad("environments never import the trainer (trainer -> core <- envs -> sandboxes)")
        elif src == "sandboxes" and dst not in ("sandboxes", "errors", "external"):
            bad("sandboxes import nothing of agentgym but agentgym.errors and agentgym.sandboxes.*")
        if (
            len(violations) == before  # one rule per import is enough
            and dst == "external"
            and src != "trainer"
            and imp.path not in SHIPPED
            and not imp.lazy
            and not imp.type_only
            and top != "__future__"
            and top not in sys.stdlib_module_names
            and _normalize(top) not in required
        ):
            bad(
                f"{top} is not a required dependency of agentgym: import it inside the function that needs it "
                "(or add it to [project].dependencies)"
            )
    return violations, used


def required_dependencies() -> set[str]:
    """The distribution names of ``[project].dependencies`` (each is also its import name)."""
    require(sys.version_info >= (3, 11), "reading pyproject.toml needs tomllib (Python 3.11+)")  # fails in CI
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    return {re.split(r"[^A-Za-z0-9_.-]", spec, maxsplit=1)[0] for spec in project["dependencies"]}


def test_the_import_direction_holds() -> None:
    violations, _ = check(PACKAGE, required_dependencies())
    report = "\n".join(map(str, violations))
    assert not violations, f"imports against trainer -> core <- envs -> sandboxes:\n{report}"


def test_every_exception_is_still_needed() -> None:
    _, used = check(PACKAGE, required_dependencies())
    stale = [f"{a.importer} -> {a.imported}" for a in CORE_EXCEPTIONS if a not in used]
    assert not stale, f"CORE_EXCEPTIONS entries no import needs any more (remove them): {stale}"
    gone = sorted(p for p in SHIPPED if not (PACKAGE.parent / p).is_file())
    assert not gone, f"SHIPPED names files that do not exist (renamed? update SHIPPED): {gone}"


def test_the_checker_reads_real_imports() -> None:
    imports = collect_imports(PACKAGE)
    assert any(i.path == "agentgym/__init__.py" and i.module == "agentgym.envs" and not i.lazy for i in imports)
    lazy = [i for i in imports if i.path == "agentgym/testing.py" and i.module == "agentgym.sandboxes"]
    assert lazy and all(i.lazy and not i.type_only for i in lazy)
    relative = [
        i for i in imports if i.path == "agentgym/sandboxes/__init__.py" and i.module == "agentgym.sandboxes.base"
    ]
    assert relative, "relative imports are resolved"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root / "agentgym"


def test_forbidden_imports_are_reported_with_file_line_and_rule(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "agentgym/__init__.py": "from agentgym.env import AgentEnv\nimport agentgym.envs\n",
            "agentgym/errors.py": "import agentgym.tools\n",
            "agentgym/tools.py": "import json\nimport numpy\n",
            "agentgym/env.py": (
                "from __future__ import annotations\n"
                "from typing import TYPE_CHECKING\n"
                "import torch\n"
                "import yaml\n"
                "if TYPE_CHECKING:\n"
                "    from agentgym.trainer import loop\n"
                "def load():\n"
                "    import docker\n"
                "    from transformers import AutoModel\n"
            ),
            "agentgym/cli.py": "def main():\n    from .sandboxes import local\n",
            "agentgym/testing.py": (
                "from agentgym.sandboxes import local\ndef probe():\n    import agentgym.sandboxes\n"
            ),
            "agentgym/envs/__init__.py": "",
            "agentgym/envs/game.py": "from agentgym.sandboxes import local\nfrom ..trainer.loop import train\n",
            "agentgym/sandboxes/__init__.py": "from .local import LocalSandbox\n",
            "agentgym/sandboxes/local.py": (
                "from agentgym.errors import SandboxError\n"
                "from . import base\n"
                "from agentgym import tools\n"
                "def f():\n"
                "    import agentgym.trainer\n"
            ),
            "agentgym/sandboxes/base.py": "",
            "agentgym/sandboxes/_server.py": "import pytest\nimport agentgym.env\n",
            "agentgym/trainer/__init__.py": "",
            "agentgym/trainer/loop.py": "import torch\nimport agentgym.envs.game\n",
        },
    )
    violations, used = check(package, {"numpy"})
    assert [str(v) for v in violations] == [
        "agentgym/cli.py:2: imports agentgym.sandboxes.local: "
        "the core imports agentgym.sandboxes only where CORE_EXCEPTIONS allows it (with a reason)",
        "agentgym/env.py:3: imports torch: "
        "the core never imports the ML stack, not even inside a function; that is the trainer's",
        "agentgym/env.py:4: imports yaml: yaml is not a required dependency of agentgym: "
        "import it inside the function that needs it (or add it to [project].dependencies)",
        "agentgym/env.py:6: imports agentgym.trainer.loop: "
        "the core never imports the trainer; name a trainer object as a 'module:attr' string",
        "agentgym/env.py:9: imports transformers: "
        "the core never imports the ML stack, not even inside a function; that is the trainer's",
        "agentgym/envs/game.py:2: imports agentgym.trainer.loop: "
        "environments never import the trainer (trainer -> core <- envs -> sandboxes)",
        "agentgym/errors.py:1: imports agentgym.tools: "
        "agentgym.errors imports nothing of agentgym (every layer, sandboxes included, imports it)",
        "agentgym/sandboxes/_server.py:2: imports agentgym.env: "
        "sandboxes import nothing of agentgym but agentgym.errors and agentgym.sandboxes.*",
        "agentgym/sandboxes/local.py:3: imports agentgym.tools: "
        "sandboxes import nothing of agentgym but agentgym.errors and agentgym.sandboxes.*",
        "agentgym/sandboxes/local.py:5: imports agentgym.trainer: "
        "sandboxes import nothing of agentgym but agentgym.errors and agentgym.sandboxes.*",
        "agentgym/testing.py:1: imports agentgym.sandboxes.local: allowed only inside a function "
        f"(CORE_EXCEPTIONS: {CORE_EXCEPTIONS[1].reason})",
    ]
    assert used == set(CORE_EXCEPTIONS)  # agentgym/__init__.py -> envs; testing.py's lazy import
