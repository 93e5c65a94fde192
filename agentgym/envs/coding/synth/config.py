"""A project's pytest configuration, and how synth runs its tests the way the grader does.

The coding environments' grader (``_runner.py``) runs pytest with an ini file of its own
(``-c``, ``addopts`` empty), ``--rootdir`` at the repository root, the node ids named on
the command line and plugin autoloading off. Whatever the project's configuration adds
(``addopts`` with ``--cov``/``-n``/``--timeout``/``--doctest-modules``/``-p plugin``,
``required_plugins``, ``minversion``, ``filterwarnings = error``, ``python_functions``...)
therefore never applies when a task is graded. Synth runs the suite the same way, so
the tests it keeps pass and fail for the same reasons at grading time, and a
configuration naming plugins that are not installed cannot stop it.

Only the keys that decide *which files* a whole-suite run collects are read here
(``testpaths``, ``python_files``, ``norecursedirs``): synth turns them into an explicit
list of test files (:func:`suite_files`), which the grader does not need (it names its
files).
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..repo import is_test_file

SYNTH_INI = "[pytest]\naddopts =\n"
"""The ini file synth's runs use (``-c``): like the grader's, it sets nothing the project could rely on."""
DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py")
"""pytest's default ``python_files``."""
UNITTEST_FILES = ("test*.py", "tests.py")
"""Extra names collected from files that use :mod:`unittest` (``testfoo.py``, ``tests.py``)."""
DEFAULT_NORECURSE = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")
"""pytest's default ``norecursedirs``."""
COLLECTION_KEYS = ("testpaths", "python_files", "norecursedirs")


@dataclass
class PytestConfig:
    """The pytest settings a project declares, and which of them synth (like the grader) does not apply."""

    source: str | None = None
    """Where they were read from, e.g. ``pyproject.toml [tool.pytest.ini_options]``; None: no configuration."""
    values: dict[str, str] = field(default_factory=dict)
    """Key -> value as text (lists joined with spaces or newlines)."""

    @property
    def testpaths(self) -> list[str]:
        """The folders or files the suite lives in (empty: the whole repository)."""
        return self.values.get("testpaths", "").split()

    @property
    def python_files(self) -> list[str]:
        """Glob patterns of test file names."""
        return self.values.get("python_files", "").split() or list(DEFAULT_PYTHON_FILES)

    @property
    def norecursedirs(self) -> list[str]:
        """Glob patterns of folders pytest does not descend into."""
        return self.values.get("norecursedirs", "").split() or list(DEFAULT_NORECURSE)

    @property
    def not_applied(self) -> dict[str, str]:
        """The settings neither synth nor the grader applies (every key but the collection keys)."""
        return {k: v for k, v in self.values.items() if k not in COLLECTION_KEYS}

    def describe(self) -> str:
        """One line saying which settings are not applied, or an empty string."""
        dropped = self.not_applied
        if not dropped:
            return ""
        shown = ", ".join(f"{k} = {_short(v)}" for k, v in dropped.items())
        return f"{self.source}: not applied (tests run with the grader's own ini, as every task is graded): {shown}"


def _short(value: str, limit: int = 60) -> str:
    flat = " ".join(value.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _text(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_pytest_config(files: Mapping[str, str]) -> PytestConfig:
    """The project's pytest settings, from the file pytest itself would pick at the root.

    pytest's order: ``pytest.ini``, then ``pyproject.toml`` with ``[tool.pytest.ini_options]``
    (or ``[tool.pytest]``), then ``tox.ini`` with ``[pytest]``, then ``setup.cfg`` with
    ``[tool:pytest]``. A file that cannot be parsed counts as no configuration.

    Args:
        files: The project as ``{relpath: content}``.

    Returns:
        The settings found (``source`` None when there are none).
    """
    if "pytest.ini" in files:
        found = _ini_section(files["pytest.ini"], "pytest")
        return PytestConfig("pytest.ini [pytest]", found or {})
    if "pyproject.toml" in files:
        tool = load_toml(files["pyproject.toml"]).get("tool", {})
        pytest_table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
        if isinstance(pytest_table, dict) and pytest_table:
            options = pytest_table.get("ini_options")
            name = "[tool.pytest.ini_options]" if isinstance(options, dict) else "[tool.pytest]"
            table = options if isinstance(options, dict) else pytest_table
            return PytestConfig(f"pyproject.toml {name}", {k: _text(v) for k, v in table.items()})
    for path, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if path in files:
            found = _ini_section(files[path], section)
            if found is not None:
                return PytestConfig(f"{path} [{section}]", found)
    return PytestConfig()


def load_toml(text: str) -> dict[str, Any]:
    """A TOML document as a dict; empty when it does not parse (or no TOML parser exists: Python 3.10 without tomli)."""
    for name in ("tomllib", "tomli"):  # the standard library from Python 3.11; tomli (optional) before
        try:
            toml = importlib.import_module(name)
            break
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10 without tomli
            continue
    else:  # pragma: no cover
        return {}
    try:
        data = toml.loads(text) if text else {}
    except (toml.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _ini_section(text: str, section: str) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_section(section):
        return None
    return {k: v.strip() for k, v in parser.items(section)}


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def suite_files(files: Mapping[str, str], config: PytestConfig) -> list[str]:
    """The test modules a whole-suite run collects, named explicitly on the command line.

    A file counts when it lies under ``testpaths`` (anywhere when none are set), under no
    folder matched by ``norecursedirs``, and its name matches ``python_files``, or, for a
    file that uses :mod:`unittest`, ``test*.py``/``tests.py`` (unittest's own discovery
    pattern). It must also count as a test for the task format
    (:func:`~agentgym.envs.coding.repo.is_test_file`), so a task never hides or grades a
    file the grader would take as source.

    Args:
        files: The project as ``{relpath: content}``.
        config: Its pytest settings.

    Returns:
        Sorted relative paths.
    """
    roots = [posixpath.normpath(p.strip("/")) for p in config.testpaths]
    out = []
    for path in files:
        if not path.endswith(".py") or not is_test_file(path):
            continue
        parts = path.split("/")
        name = parts[-1]
        if name == "conftest.py" or name.startswith("__"):
            continue
        if roots and not any(r in (".", path) or path.startswith(r + "/") for r in roots):
            continue
        if any(_matches(d, config.norecursedirs) for d in parts[:-1]):
            continue
        patterns = config.python_files
        if "unittest" in files[path] or name == "tests.py":  # a root tests.py in pytest style counts too
            patterns = [*patterns, *UNITTEST_FILES]
        if _matches(name, patterns):
            out.append(path)
    return sorted(out)
