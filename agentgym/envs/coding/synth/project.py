"""Where a project's files come from: a local folder, or a PyPI source distribution.

A project is ``{relpath: text}``: its text files without VCS, build, docs or example
folders, with a ``src/`` layout flattened so ``python -m pytest`` at the root imports
the package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".tox",
        ".nox",
        "__pycache__",
        "build",
        "dist",
        "docs",
        "doc",
        "benchmark",
        "benchmarks",
        "examples",
        ".github",
        "node_modules",
        ".venv",
        "venv",
    }
)
"""Folders never loaded (besides hidden ones and ``*.egg-info``)."""
MAX_FILE_BYTES = 256 * 1024
"""Larger files are left out (data), except Python modules up to :data:`MAX_MODULE_BYTES`."""
MAX_MODULE_BYTES = 2 * 1024 * 1024
"""Larger Python modules are left out too (smaller ones may be generated tables the package imports)."""
MAX_PROJECT_BYTES = 8 * 1024 * 1024
"""A project with more text than this is refused."""
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar.bz2")


def load_project(root: str | Path) -> dict[str, str]:
    """Read a project's text files.

    Args:
        root: The project's root folder (the one its tests run from).

    Returns:
        ``{relpath: content}`` of its UTF-8 text files, ``src/`` layout flattened
        (see :func:`flatten_src_layout`). Hidden files, symlinks, compiled files, files over
        :data:`MAX_FILE_BYTES` (Python modules: :data:`MAX_MODULE_BYTES`) and the folders in
        :data:`SKIP_DIRS` are left out.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
        ValueError: The project holds more than :data:`MAX_PROJECT_BYTES` of text.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} is not a directory: give the project's root folder (the one holding its tests)"
        )
    files: dict[str, str] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (
                name.startswith(".")
                or name.endswith((".pyc", ".pyo", ".so"))
                or path.is_symlink()
                or path.stat().st_size > (MAX_MODULE_BYTES if name.endswith(".py") else MAX_FILE_BYTES)
            ):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            total += len(text)
            if total > MAX_PROJECT_BYTES:
                raise ValueError(
                    f"{root} holds more than {MAX_PROJECT_BYTES} bytes of text: synthesize from a smaller project"
                )
            files[path.relative_to(root).as_posix()] = text
    return flatten_src_layout(files)


def flatten_src_layout(files: dict[str, str]) -> dict[str, str]:
    """Move ``src/<pkg>`` to ``<pkg>`` so tests import the package from the repository root.

    Args:
        files: A project as ``{relpath: content}``.

    Returns:
        The same project with ``src/`` removed from its paths, or ``files`` unchanged when
        it has no ``src/`` folder or a moved path would clash with an existing one.
    """
    if not any(p.startswith("src/") for p in files):
        return files
    moved = {p[len("src/") :]: c for p, c in files.items() if p.startswith("src/")}
    if set(moved) & set(files):
        return files
    return {**{p: c for p, c in files.items() if not p.startswith("src/")}, **moved}


def download_sdist(spec: str, dest: str | Path) -> Path:
    """Download a source distribution from PyPI with ``pip download`` and unpack it.

    Args:
        spec: A requirement naming one release, e.g. ``"attrs==23.2.0"``.
        dest: Folder for the archive and its unpacked tree (created if missing).

    Returns:
        The unpacked project's root folder.

    Raises:
        RuntimeError: pip failed (no network, no such release, no sdist), or left no archive.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", spec, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not download the sdist of {spec!r}:\n{done.stderr[-2000:]}")
    archives = sorted(p for p in dest.iterdir() if p.name.endswith(SDIST_SUFFIXES))
    if not archives:
        raise RuntimeError(f"pip left no source archive for {spec!r} in {dest}: does the release ship an sdist?")
    out = dest / "unpacked"
    _unpack(archives[0], out)
    roots = [p for p in out.iterdir() if p.is_dir()]
    return roots[0] if len(roots) == 1 else out


def _unpack(archive: Path, out: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(out)
        return
    with tarfile.open(archive) as t:
        try:
            t.extractall(out, filter="data")  # refuses absolute paths, links out of the tree, devices
        except TypeError:  # Python without extraction filters (< 3.10.12)
            t.extractall(out)
