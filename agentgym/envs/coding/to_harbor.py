"""agentgym's coding tasks (CodeRepair format) as Harbor shell tasks, for ``agentgym tasks export harbor``.

The repository becomes ``environment/repo/`` (copied to ``/app``), the hidden tests and a pristine
copy of every test and configuration file go into ``tests/``, and ``tests/test.sh`` puts them back
over the agent's repository before running the FAIL_TO_PASS and PASS_TO_PASS tests with pytest
(``reward.json``: ``reward`` 1 when all pass, ``f2p_fraction``, ``p2p_fraction``). The reference
fix becomes ``solution/solve.sh``.

What does not travel: agentgym's layered coding grader (tamper detection inside the test run, the
scan of the diff, keeping only source changes) is agentgym's own; a Harbor verifier runs the
tests on the agent's repository as it is, with test files and configuration restored.
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from agentgym.envs.coding.repo import CONFIG_NAMES, is_test_file, solution_files, target_tests, test_paths_of
from agentgym.harbor import DEFAULT_WORKDIR, plan_dockerfile
from agentgym.tasks import Task

_CHECK = r'''"""Score the junit report of the FAIL_TO_PASS and PASS_TO_PASS run (written by test.sh)."""
import json
import sys
import xml.etree.ElementTree as ET

targets = json.load(open("/tests/targets.json"))
outcome = {}
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    root = None
for case in root.iter("testcase") if root is not None else []:
    classname = case.get("classname", "")
    path = case.get("file") or classname.replace(".", "/") + ".py"
    module = path[:-3].replace("/", ".") if path.endswith(".py") else path
    inner = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    node = "::".join([path, *inner.split(".")] if inner else [path]) + f"::{case.get('name')}"
    bad = any(child.tag in ("failure", "error", "skipped") for child in case)
    outcome[node] = not bad


def passed(node):
    return outcome.get(node, False)


f2p, p2p = targets["fail_to_pass"], targets["pass_to_pass"]
f2p_ok = sum(passed(n) for n in f2p) / len(f2p) if f2p else 1.0
p2p_ok = sum(passed(n) for n in p2p) / len(p2p) if p2p else 1.0
reward = 1 if f2p_ok == 1.0 and p2p_ok == 1.0 else 0
json.dump({"reward": reward, "f2p_fraction": f2p_ok, "p2p_fraction": p2p_ok}, open(sys.argv[2], "w"))
'''

_SANITIZE = r"""# Before the tests run: drop what the agent added that would change how pytest runs.
import importlib.util
import json
import os
import shutil
import sys

known = set(json.load(open("/tests/known.json")))
CONFIG = {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "sitecustomize.py", "usercustomize.py"}
for root, dirs, files in os.walk("/app"):
    for name in files:
        rel = os.path.relpath(os.path.join(root, name), "/app")
        if (name in CONFIG or name.endswith(".pth")) and rel not in known:
            os.remove(os.path.join(root, name))
# A new top-level module or package named like a library (pytest, json, ...) would shadow it.
top = {p.split("/")[0].removesuffix(".py") for p in known}
for entry in os.listdir("/app"):
    name = entry.removesuffix(".py")
    path = os.path.join("/app", entry)
    if name in top or not name.isidentifier():
        continue
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
"""

_TEST_SH = """#!/bin/bash
# Restore the task's test and configuration files over the agent's repository, then run the targets.
mkdir -p "$HOME" && echo '{"reward": 0}' > /logs/verifier/reward.json
cd /app || exit 0
cp -a /tests/restore/. /app/
python3 /tests/sanitize.py || exit 0
PYTHONPATH=%(pythonpath)s timeout %(timeout)d python3 -m pytest -p no:cacheprovider -o junit_family=xunit1 \\
  --junitxml="$HOME/junit.xml" -q %(targets)s > "$HOME/pytest.log" 2>&1
kill -9 -1 2>/dev/null || true  # nothing the tested code started may touch the reward
python3 /tests/check.py "$HOME/junit.xml" /logs/verifier/reward.json ||
  echo '{"reward": 0}' > /logs/verifier/reward.json
tail -n 30 "$HOME/pytest.log"
exit 0
"""


def _text(content: str, mode: int = 0o644) -> dict[str, Any]:
    return {"text": content, "mode": mode}


def coding_task_to_harbor(task: Task, test_timeout: int = 300) -> Task:
    """The Harbor-format equivalent of a CodeRepair task (see the module docstring)."""
    files: dict[str, str] = task.setup["files"]
    tests_paths = set(test_paths_of(task))
    restore = {
        p: c for p, c in files.items() if p in tests_paths or is_test_file(p) or p.rsplit("/", 1)[-1] in CONFIG_NAMES
    }
    restore.update(task.verifier.get("hidden_tests", {}))
    targets = target_tests(task)
    dockerfile = f"FROM agentgym/base:bookworm\nWORKDIR {DEFAULT_WORKDIR}\nCOPY repo/ {DEFAULT_WORKDIR}/\n"
    context = {"Dockerfile": _text(dockerfile), **{f"repo/{p}": _text(c) for p, c in files.items()}}
    tests = {
        "test.sh": _text(
            _TEST_SH
            % {
                "timeout": test_timeout,
                "targets": " ".join(shlex.quote(t) for t in targets),
                # The verifier's Python does not import from the workdir by itself (see terminal.verify);
                # sanitize.py first removes what could shadow pytest or a library.
                "pythonpath": "/app:/app/src" if any(p.startswith("src/") for p in files) else "/app",
            },
            0o755,
        ),
        "check.py": _text(_CHECK),
        "sanitize.py": _text(_SANITIZE),
        "known.json": _text(json.dumps(sorted(files))),
        "targets.json": _text(
            json.dumps(
                {
                    "fail_to_pass": list(task.verifier.get("fail_to_pass", [])),
                    "pass_to_pass": list(task.verifier.get("pass_to_pass", [])),
                },
                indent=1,
            )
        ),
        **{f"restore/{p}": _text(c) for p, c in restore.items()},
    }
    lines = ["#!/bin/bash", "set -e", f"cd {DEFAULT_WORKDIR}"]
    for path, content in sorted(solution_files(task).items()):
        q = shlex.quote(path)
        if content is None:
            lines.append(f"rm -f {q}")
        else:
            data = base64.b64encode(content.encode()).decode()
            lines.append(f'mkdir -p "$(dirname {q})" && echo {data} | base64 -d > {q}')
    plan = plan_dockerfile(dockerfile)
    prompt = f"{task.prompt}\n\nThe repository is in {DEFAULT_WORKDIR}; run its tests with `python3 -m pytest`."
    return Task(
        id=task.id,
        prompt=prompt,
        setup={"format": "harbor", **plan.to_dict(), "context": context},
        verifier={"tests": tests, "timeout": float(test_timeout + 60)},
        solution={"files": {"solve.sh": _text("\n".join(lines) + "\n", 0o755)}},
        metadata={
            **{k: v for k, v in task.metadata.items() if isinstance(v, (str, int, float))},
            "category": "coding",
            "agent_timeout": 1800.0,
            "converted_from": "coderepair",
        },
        split=task.split,
    )
