"""The docs site builds with warnings as errors, and its API reference documents every public name.

The guides' Python examples run as written (as the README's do in ``test_readme.py``).
The site is built the way ``make docs`` builds it (``mkdocs build --strict``), into a scratch
folder. Reference pages are rendered from each package's ``__all__`` (mkdocstrings'
``filters: public``), so a name added to ``__all__`` is documented without touching the docs,
and a name griffe cannot see statically (an ``__all__`` entry served only by a module
``__getattr__``) is caught here.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

from agentgym.testing import require_bwrap

ROOT = Path(__file__).resolve().parents[1]
# Each package whose __all__ must be documented (issue 16 names agentgym, agentgym.sandboxes and
# agentgym.trainer; the browser protocol is public too), and the page that documents it.
REFERENCE_PAGES = {
    "agentgym": "reference/agentgym/index.html",
    "agentgym.sandboxes": "reference/sandboxes/index.html",
    "agentgym.sandboxes.browser": "reference/browser/index.html",
    "agentgym.trainer": "reference/trainer/index.html",
    "agentgym.envs.terminal": "reference/terminal/index.html",
    "agentgym.harbor": "reference/harbor/index.html",
    "agentgym.distributed": "reference/distributed/index.html",
    "agentgym.judges": "reference/judges/index.html",
    "agentgym.trainer.reward_model": "reference/reward-models/index.html",
    "agentgym.trainer.rm_train": "reference/rm-train/index.html",
    "agentgym.trainer.rm_data": "reference/rm-data/index.html",
}


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the caller reads the exit status and the output
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, f"`make docs` fails:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return out


def documented_ids(html: str) -> set[str]:
    """The anchors mkdocstrings gives each rendered object (``id="agentgym.Trajectory"``)."""
    return set(re.findall(r'id="(agentgym[\w.]*)"', html))


@pytest.mark.parametrize("package", sorted(REFERENCE_PAGES))
def test_every_public_name_is_in_the_api_reference(site: Path, package: str) -> None:
    public = importlib.import_module(package).__all__
    assert public, f"{package}.__all__ is empty"
    ids = documented_ids((site / REFERENCE_PAGES[package]).read_text())
    missing = [name for name in public if f"{package}.{name}" not in ids]
    assert not missing, (
        f"{package}.__all__ names missing from the API reference: {missing}. The reference is built "
        "by static analysis (griffe): a name served only by a module __getattr__ needs an import "
        "griffe can see, e.g. under `if TYPE_CHECKING:` in the package's __init__.py"
    )


def test_reference_pages_show_nothing_outside_all(site: Path) -> None:
    for package, page in REFERENCE_PAGES.items():
        public = set(importlib.import_module(package).__all__)
        depth = package.count(".") + 1
        top_level = {i.split(".")[depth] for i in documented_ids((site / page).read_text()) if i.count(".") == depth}
        assert top_level <= public, f"{package}: documented but not in __all__: {sorted(top_level - public)}"


@pytest.mark.parametrize(
    ("page", "complaint"),
    [
        ("::: agentgym.NoSuchName\n", "agentgym.NoSuchName"),  # an object the reference cannot collect
        ("See [the env][agentgym.NoSuchEnv].\n", "agentgym.NoSuchEnv"),  # a cross-reference to nothing
    ],
    ids=["object", "cross-reference"],
)
def test_a_broken_reference_fails_the_build(tmp_path: Path, page: str, complaint: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "broken.md").write_text(f"# Broken\n\n{page}")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["nav"].append({"Broken": "broken.md"})
    config["plugins"][1]["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0, "the strict build accepted a page that names an object that does not exist"
    assert complaint in done.stdout + done.stderr


def python_examples() -> list[tuple[str, str]]:
    """Every ``python`` code block of the docs pages, as (page:index, source)."""
    return [
        (f"{page.relative_to(ROOT / 'docs')}:{i}", block)
        for page in sorted((ROOT / "docs").rglob("*.md"))
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))
    ]


# Examples that would start a training run: the guide shows the real call; the test checks the
# config it builds and that `train` is importable, and leaves the run to tests/trainer.
TRAINING_EXAMPLES = {"guide/train.md:0"}


@pytest.mark.parametrize(("where", "source"), python_examples(), ids=[w for w, _ in python_examples()])
def test_docs_python_examples_run(where: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    if "LocalSandbox" in source:
        require_bwrap()
    if where in TRAINING_EXAMPLES:
        assert "train(GRPOConfig(" in source, f"{where} no longer starts a training run; update TRAINING_EXAMPLES"
        source = source.replace("summary = train(", "config = (")
    namespace: dict[str, object] = {}
    registered = set(gym.registry)
    try:
        exec(compile(source, where, "exec"), namespace)
    finally:  # ids an example registers would clash with the README's examples of the same name
        for env_id in set(gym.registry) - registered:
            del gym.registry[env_id]
