"""A project's declared dependencies, installed once per project into a cached folder.

:func:`declared_requirements` reads them statically (nothing of the project runs): the
runtime dependencies and the test extras (``test``, ``tests``, ``testing``, ``dev``) of
``pyproject.toml`` (PEP 621, PEP 735 dependency groups, Poetry), ``setup.cfg``, literal
``setup()`` arguments in ``setup.py``, ``requirements*.txt`` files for tests, and
``tox.ini`` ``deps``. :func:`install_requirements` runs the host's pip with ``--target``
into ``<cache>/<key>``, where the key hashes the project's name, the requirements and the
Python version, so the folder is built once and reused. Synth uploads it into each
sandbox and puts it on ``PYTHONPATH``: nothing inside the sandbox touches the network.

Left out on purpose: pytest itself and its plugins (the grader runs the sandbox's own
pytest with plugin autoloading off, so a plugin would change nothing there), and tools
that never run under pytest (linters, type checkers, coverage, tox, docs builders).
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import load_toml

TEST_EXTRAS = ("test", "tests", "testing", "dev")
"""Extras and dependency groups read as test dependencies."""
REQUIREMENT_FILES = re.compile(
    r"^(requirements[-_]?(test|tests|testing|dev)[^/]*|(test|tests|testing|dev)[-_]requirements[^/]*"
    r"|requirements/(test|tests|testing|dev)[^/]*|(tests?|testing)/requirements[^/]*|requirements)\.(txt|in)$"
)
"""Requirement files read (``requirements.txt`` counts as runtime dependencies)."""
NOT_INSTALLED = re.compile(
    r"^(pytest([-_].*)?|coverage|codecov|coveralls|tox|nox|flake8.*|mypy|pylint|black|ruff|isort|pre[-_]commit"
    r"|sphinx.*|mkdocs.*|furo|myst[-_]parser|twine|build|wheel|setuptools|setuptools[-_]scm|pip|check[-_]manifest"
    r"|pyright|bump2?version|towncrier|ipython|ipdb|pdbpp|types[-_].*|.*[-_]stubs)$",
    re.IGNORECASE,
)
"""Names never installed: pytest and its plugins, and tools that do not run under pytest."""
PRUNED = ("pytest", "_pytest", "py.py", "pluggy", "iniconfig", "bin")
"""Removed from an installed folder, so the sandbox's own pytest is the one that runs."""
DONE = ".agentgym-deps.json"
"""Written last into a finished folder: what was installed and what failed."""


@dataclass
class Requirements:
    """What a project declares, split into what synth installs and what it leaves out."""

    install: list[str] = field(default_factory=list)
    """Requirement strings passed to pip (markers included; pip evaluates them)."""
    skipped: list[str] = field(default_factory=list)
    """Declared but left out (pytest, its plugins, tools)."""
    sources: list[str] = field(default_factory=list)
    """Where they were read, e.g. ``pyproject.toml [project.optional-dependencies] tests``."""


@dataclass
class InstalledDeps:
    """A cached folder of installed requirements."""

    path: Path
    installed: list[str]
    failed: list[str]
    """Requirements pip could not install (each tried alone after the whole set failed)."""
    cached: bool = False
    """The folder existed already."""

    def describe(self) -> str:
        """One line for the log."""
        what = f"{len(self.installed)} requirement(s) in {self.path}" + (" (cached)" if self.cached else "")
        return what + (f"; could not install: {', '.join(self.failed)}" if self.failed else "")


def requirement_name(req: str) -> str:
    """The distribution name a requirement string starts with (``""`` for paths, URLs and options)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    if not m or req.lstrip().startswith(("-", ".", "/", "git+", "http:", "https:", "file:")):
        return ""
    return m.group(1)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras_of(req: str) -> list[str]:
    m = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]", req)
    return [e.strip() for e in m.group(1).split(",")] if m else []


def project_name(files: Mapping[str, str]) -> str:
    """The distribution name the project declares (pyproject, setup.cfg or a literal ``setup(name=...)``)."""
    pyproject = load_toml(files.get("pyproject.toml", ""))
    name = pyproject.get("project", {}).get("name") or pyproject.get("tool", {}).get("poetry", {}).get("name")
    if isinstance(name, str):
        return name
    cfg = _cfg(files.get("setup.cfg", ""))
    if cfg.has_option("metadata", "name"):
        return cfg.get("metadata", "name").strip()
    value = _setup_py_args(files.get("setup.py", "")).get("name")
    return value if isinstance(value, str) else ""


def with_package_metadata(files: Mapping[str, str]) -> dict[str, str]:
    """The project with ``<name>.egg-info/PKG-INFO`` at its root, as ``pip install -e .`` leaves it.

    Code that asks for its own installed version (``importlib.metadata.version("humanize")``)
    then finds it, in synth's runs and at grading alike (the repository root is on
    ``sys.path``). The sdist's own ``PKG-INFO`` is used when present; otherwise the name and
    version come from ``pyproject.toml``, ``setup.cfg`` or ``setup.py`` (version ``0`` when
    dynamic). A project that already holds metadata, or whose name is unknown, is returned as is.
    """
    if any(p.split("/", 1)[0].endswith((".egg-info", ".dist-info")) for p in files):
        return dict(files)
    text = files.get("PKG-INFO", "")
    match = re.search(r"^Name:\s*(\S+)", text, re.MULTILINE)
    name = match.group(1) if match else project_name(files)
    if not name:
        return dict(files)
    if not match:
        text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {_project_version(files)}\n"
    return {**files, f"{re.sub(r'[-.]+', '_', name)}.egg-info/PKG-INFO": text}


def _project_version(files: Mapping[str, str]) -> str:
    project = load_toml(files.get("pyproject.toml", "")).get("project", {})
    version = project.get("version") if isinstance(project, dict) else None
    if not isinstance(version, str):
        cfg = _cfg(files.get("setup.cfg", ""))
        version = cfg.get("metadata", "version") if cfg.has_option("metadata", "version") else None
    if not isinstance(version, str):
        version = _setup_py_args(files.get("setup.py", "")).get("version")
    return version.strip() if isinstance(version, str) and re.fullmatch(r"\s*[\w.+!-]+\s*", version) else "0"


def _cfg(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        pass
    return parser


def _lines(value: str) -> list[str]:
    """Non-empty lines without comments, a trailing backslash joining a line to the next."""
    value = re.sub(r"\\\s*\n", " ", value)
    return [line.split("#", 1)[0].strip() for line in value.splitlines() if line.split("#", 1)[0].strip()]


def _setup_py_args(text: str) -> dict[str, object]:
    """The literal keyword arguments of the ``setup(...)`` call (names bound to literals resolved)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    names: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError, RecursionError):
                pass
    out: dict[str, object] = {}
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called != "setup":
            continue
        for kw in call.keywords:
            if kw.arg is None:
                continue
            try:
                out[kw.arg] = _literal(kw.value, names)
            except (ValueError, SyntaxError, TypeError, RecursionError):
                pass
    return out


def _literal(node: ast.expr, names: Mapping[str, object]) -> object:
    """A literal, where module-level names bound to literals may stand for values (``{"tests": TESTS}``)."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e, names) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(k, names): _literal(v, names) for k, v in zip(node.keys, node.values, strict=True) if k is not None
        }
    return ast.literal_eval(node)


def _str_list(value: object) -> list[str]:
    if isinstance(value, str):
        return _lines(value)
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _poetry(table: object) -> list[str]:
    if not isinstance(table, dict):
        return []
    return [name for name in table if isinstance(name, str) and name.lower() != "python"]


def _requirement_file(files: Mapping[str, str], path: str, seen: set[str]) -> list[str]:
    if path in seen or path not in files:
        return []
    seen.add(path)
    out = []
    for line in _lines(files[path]):
        if line.startswith(("-r", "--requirement")):
            ref = line.split(None, 1)[1] if " " in line else line[2:]
            out += _requirement_file(files, os.path.normpath(os.path.join(os.path.dirname(path), ref.strip())), seen)
        elif not line.startswith("-"):
            out.append(line)
    return out


def declared_requirements(files: Mapping[str, str]) -> Requirements:
    """The project's runtime and test requirements, read without running any of its code.

    Runtime: ``[project] dependencies``, Poetry's, ``install_requires`` (``requirements.txt``
    when none of these declares any). Test: the ``test``/``tests``/``testing`` extras and
    dependency groups and ``tests_require``; when none, the best ``requirements*test*`` file
    (unversioned, ``.in``, then newest); then ``tox.ini`` ``[testenv] deps``; then the
    ``dev`` extras, groups or requirement file.

    Args:
        files: The project as ``{relpath: content}``.

    Returns:
        The requirements to install (deduplicated, in the order found), those left out,
        and where they came from. A requirement on the project itself with extras
        (``attrs[tests]`` in attrs) pulls in those extras instead.
    """
    own = _canonical(project_name(files))
    Found = list[tuple[str, list[str]]]  # (source, requirements)
    runtime: Found = []
    test: Found = []
    dev: Found = []
    extras: dict[str, list[str]] = {}  # every extra the project declares, for self-references

    def add_extras(source: str, declared: dict[str, list[str]]) -> None:
        extras.update(declared)
        test.extend((f"{source} {e}", declared[e]) for e in TEST_EXTRAS[:-1] if e in declared)
        dev.extend((f"{source} {e}", declared[e]) for e in TEST_EXTRAS[-1:] if e in declared)

    pyproject = load_toml(files.get("pyproject.toml", ""))
    project = pyproject.get("project", {})
    if isinstance(project, dict):
        runtime.append(("pyproject.toml [project] dependencies", _str_list(project.get("dependencies"))))
        optional = project.get("optional-dependencies", {})
        if isinstance(optional, dict):
            add_extras("pyproject.toml optional-dependencies", {str(k): _str_list(v) for k, v in optional.items()})
    groups = pyproject.get("dependency-groups", {})
    if isinstance(groups, dict):
        for g in TEST_EXTRAS:
            (dev if g == "dev" else test).append((f"pyproject.toml [dependency-groups] {g}", _group(groups, g, set())))
    poetry = pyproject.get("tool", {}).get("poetry", {}) if isinstance(pyproject.get("tool"), dict) else {}
    if isinstance(poetry, dict) and poetry:
        runtime.append(("pyproject.toml [tool.poetry.dependencies]", _poetry(poetry.get("dependencies"))))
        for g in TEST_EXTRAS:
            group = poetry.get("group", {}).get(g, {}) if isinstance(poetry.get("group"), dict) else {}
            (dev if g == "dev" else test).append(
                (f"pyproject.toml [tool.poetry.group.{g}]", _poetry(group.get("dependencies")))
            )
        dev.append(("pyproject.toml [tool.poetry.dev-dependencies]", _poetry(poetry.get("dev-dependencies"))))

    cfg = _cfg(files.get("setup.cfg", ""))
    if cfg.has_option("options", "install_requires"):
        runtime.append(("setup.cfg install_requires", _lines(cfg.get("options", "install_requires"))))
    if cfg.has_section("options.extras_require"):
        add_extras("setup.cfg extras_require", {k: _lines(v) for k, v in cfg.items("options.extras_require")})

    setup = _setup_py_args(files.get("setup.py", ""))
    runtime.append(("setup.py install_requires", _str_list(setup.get("install_requires"))))
    test.append(("setup.py tests_require", _str_list(setup.get("tests_require"))))
    setup_extras = setup.get("extras_require")
    if isinstance(setup_extras, dict):
        add_extras("setup.py extras_require", {str(k): _str_list(v) for k, v in setup_extras.items()})

    seen: set[str] = set()
    req_files = [p for p in files if REQUIREMENT_FILES.match(p)]
    if "requirements.txt" in req_files and not any(reqs for _, reqs in runtime):
        runtime.append(("requirements.txt", _requirement_file(files, "requirements.txt", seen)))
    if not any(reqs for _, reqs in test):
        best = _best_file([p for p in req_files if "test" in p])
        if best:
            test.append((best, _requirement_file(files, best, seen)))
    tox = _cfg(files.get("tox.ini", ""))
    if not any(reqs for _, reqs in test) and tox.has_option("testenv", "deps"):
        deps = []
        for line in _lines(tox.get("testenv", "deps")):
            if line.startswith("-r"):
                deps += _requirement_file(files, line[2:].strip().replace("{toxinidir}/", ""), seen)
            elif "{" not in line and not line.startswith("-"):
                deps.append(line.split(":", 1)[1].strip() if re.match(r"^[\w,{}-]+:\s", line) else line)
        test.append(("tox.ini [testenv] deps", deps))
    if not any(reqs for _, reqs in test):
        best = _best_file([p for p in req_files if "dev" in p])
        if best:
            dev.append((best, _requirement_file(files, best, seen)))
        test = dev
    found = runtime + test

    out = Requirements()
    names: set[str] = set()
    pending = [(source, req) for source, reqs in found for req in reqs]
    expanded: set[str] = set()
    while pending:
        source, req = pending.pop(0)
        name = _canonical(requirement_name(req))
        if not name:
            continue
        if own and name == own:
            for extra in _extras_of(req):
                if extra not in expanded and extra in extras:
                    expanded.add(extra)
                    pending += [(f"{source} -> [{extra}]", r) for r in extras[extra]]
            continue
        if name in names:
            continue
        names.add(name)
        if source not in out.sources:
            out.sources.append(source)
        (out.skipped if NOT_INSTALLED.match(name) else out.install).append(req.strip())
    return out


def _best_file(paths: list[str]) -> str | None:
    """One requirement file of several (``requirements-tests36.txt``, ``...39.in``): unversioned, ``.in``, newest."""
    if not paths:
        return None
    return max(paths, key=lambda p: (not re.search(r"\d", p.rsplit("/", 1)[-1]), p.endswith(".in"), p))


def _group(groups: dict[str, object], name: str, seen: set[str]) -> list[str]:
    """A PEP 735 dependency group with its ``{include-group = ...}`` entries resolved."""
    if name in seen:
        return []
    seen.add(name)
    out: list[str] = []
    items = groups.get(name)
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            out += _group(groups, item["include-group"], seen)
    return out


def top_level_modules(files: Mapping[str, str]) -> list[str]:
    """The importable names the project itself provides at its root (packages and modules)."""
    names = {p.split("/", 1)[0] for p in files if p.count("/") == 1 and p.endswith("/__init__.py")}
    names |= {p[: -len(".py")] for p in files if "/" not in p and p.endswith(".py")}
    return sorted(names - {"setup", "conftest", "noxfile", "tasks"})


def cache_root() -> Path:
    """Where installed folders are kept: ``$AGENTGYM_CACHE/synth-deps`` (default ``~/.cache/agentgym``)."""
    return Path(os.environ.get("AGENTGYM_CACHE", Path.home() / ".cache" / "agentgym")) / "synth-deps"


INSTALLED: dict[tuple[str, tuple[str, ...]], Path] = {}
"""Folders :func:`install_requirements` produced in this process, by (project, sorted requirements):
the coding grader uses the same folder as synthesis did, whatever cache root and pip options it had."""


def folder_for(
    requirements: Sequence[str], root: str | Path, *, project: str = "", pip_args: Sequence[str] = ()
) -> Path:
    """The cached folder :func:`install_requirements` builds for these arguments (it may not exist yet).

    The key hashes the project's name, the sorted requirements, the pip options and the
    Python version; a folder is complete when it holds the marker file ``DONE``.
    """
    key_data = json.dumps([project, sorted(requirements), list(pip_args), list(sys.version_info[:2])])
    return Path(root) / hashlib.sha256(key_data.encode()).hexdigest()[:16]


def install_requirements(
    requirements: Sequence[str],
    root: str | Path,
    *,
    project: str = "",
    top_level: Sequence[str] = (),
    pip_args: Sequence[str] = (),
    timeout: float = 900.0,
) -> InstalledDeps:
    """Install requirements with the host's pip into a cached folder (built once, then reused).

    Args:
        requirements: Requirement strings (as :func:`declared_requirements` returns them).
        root: The cache root (see :func:`cache_root`); the folder is ``root/<key>``.
        project: The project's name (part of the key).
        top_level: The project's own top-level modules and packages: removed from the
            folder, so a dependency that requires the project cannot shadow it.
        pip_args: Extra pip options, e.g. ``["--no-index", "--find-links", DIR]``.
        timeout: Seconds per pip run.

    Returns:
        The folder, what was installed and what failed. When the whole set fails, each
        requirement is tried alone so one bad requirement does not lose the others.
    """
    path = folder_for(requirements, root, project=project, pip_args=pip_args)
    done = path / DONE
    if done.exists():
        record = json.loads(done.read_text())
        INSTALLED[(project, tuple(sorted(requirements)))] = path
        return InstalledDeps(path, record["installed"], record["failed"], cached=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    installed, failed = list(requirements), list[str]()
    if requirements and not _pip(tmp, requirements, pip_args, timeout):
        # which ones fail, each alone in a scratch folder; then the others together (one pip run, so
        # namespace packages such as jaraco.* are merged instead of replacing each other)
        installed = []
        for i, req in enumerate(requirements):
            scratch = tmp.with_name(f"{tmp.name}-{i}")
            (installed if _pip(scratch, [req], pip_args, timeout) else failed).append(req)
            shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(tmp)
        tmp.mkdir()
        if installed and not _pip(tmp, installed, pip_args, timeout):
            failed, installed = [*failed, *installed], []
    for name in [*PRUNED, *top_level]:
        for hit in [tmp / name, tmp / f"{name}.py", *tmp.glob(f"{name}-*.dist-info")]:
            if hit.is_dir():
                shutil.rmtree(hit)
            elif hit.exists():
                hit.unlink()
    (tmp / DONE).write_text(json.dumps({"installed": installed, "failed": failed}))
    try:
        tmp.rename(path)
    except OSError:  # another process finished the same folder first
        shutil.rmtree(tmp, ignore_errors=True)
    INSTALLED[(project, tuple(sorted(requirements)))] = path
    return InstalledDeps(path, installed, failed)


def _pip(target: Path, requirements: Sequence[str], pip_args: Sequence[str], timeout: float) -> bool:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    cmd += ["--target", str(target), *pip_args, *requirements]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0
