"""Synthesize bug-fix tasks from a real Python project and its own test suite.

The recipe, in the spirit of SWE-smith with mutation operators instead of an LLM, one
module per step:

* :mod:`.project`: load the project's files (a local folder, or a PyPI sdist that ships
  its tests);
* :mod:`.config`: read its pytest configuration; tests run with the grader's own ini, so
  options of plugins that are not installed cannot stop them;
* :mod:`.deps`: install its declared runtime and test dependencies once into a cached folder;
* :mod:`.runner`: run its pytest suite in any :class:`~agentgym.sandboxes.Sandbox`, with
  the plugin in :mod:`._pytest_plugin` reporting per-test outcomes and line coverage;
* :mod:`.baseline`: run the original suite once; :mod:`.errors` says why a project
  cannot be used (``cannot use <project>: <category>: <detail>``);
* :mod:`.search`: mutate it site by site and keep the mutants its tests catch;
* :mod:`.task`: write each kept mutant as a task, with an issue text from the failing
  tests only; :mod:`.stats` counts what happened to every mutant tried;
* :mod:`.check`: re-run a task's tests to confirm the base fails and the fix passes.

Tests run in ``local`` (bubblewrap) or ``docker`` sandboxes; ``none`` runs them as plain
host subprocesses (``LocalSandbox(isolation="none")``) and is only for trusted code.
"""

from .check import check_task_tests
from .config import PytestConfig, read_pytest_config, suite_files
from .deps import InstalledDeps, Requirements, declared_requirements, install_requirements, with_package_metadata
from .errors import SynthError
from .project import download_sdist, flatten_src_layout, load_project
from .runner import PytestRun, PytestRunner, SandboxKind, open_sandbox, project_runner, run_task_tests, suite_limits
from .search import SynthConfig, SynthResult, candidate_order, source_files, synthesize
from .stats import OperatorStats, Outcome, yield_table
from .task import issue_text, mutant_task

__all__ = [
    "InstalledDeps",
    "OperatorStats",
    "Outcome",
    "PytestConfig",
    "PytestRun",
    "PytestRunner",
    "Requirements",
    "SandboxKind",
    "SynthConfig",
    "SynthError",
    "SynthResult",
    "candidate_order",
    "check_task_tests",
    "declared_requirements",
    "download_sdist",
    "flatten_src_layout",
    "install_requirements",
    "issue_text",
    "load_project",
    "mutant_task",
    "open_sandbox",
    "project_runner",
    "read_pytest_config",
    "run_task_tests",
    "source_files",
    "suite_files",
    "suite_limits",
    "synthesize",
    "with_package_metadata",
    "yield_table",
]
