"""Function-level grading: the candidate's results are compared outside the candidate's process.

A *function task* (HumanEval, or any task checked by input/expected-output cases) says so in
its verifier (see :func:`is_function_task`)::

    verifier["function"] = {
        "entry_point": "truncate_number",
        "module": "solution.py",          # the file holding it (in setup["files"] or the agent's changes)
        # either a check function, as in HumanEval ...
        "prelude": "<trusted source the check needs, e.g. helpers defined in the prompt>",
        "check": "<trusted source defining check(candidate)>",
        # ... or input/expected-output cases
        "cases": [{"args": [3.5], "kwargs": {}, "expected": 0.5}],
        "float_tol": 0.0,                 # cases only: relative/absolute tolerance for floats
        "call_timeout": 10.0,             # optional: seconds per call
        "nodeids": [...],                 # optional: outcome names, default verifier["fail_to_pass"]
    }

:class:`FunctionGrader` runs one fresh sandbox per submission with two processes in it:

* the **checker** (:mod:`~agentgym.envs.coding._function_runner`) is trusted and never imports
  the candidate: it runs the prelude and the check (or the cases), and every call of the
  candidate goes to the child. It is non-dumpable before the child exists, got the check on
  stdin (never on disk, in ``argv`` or in the environment), and writes a nonce-tagged verdict;
* the **child** imports the candidate module and answers each call with plain data as text
  (:mod:`~agentgym.envs.coding.plaindata`); the checker rebuilds built-in values from that text,
  so nothing the candidate defined ever runs where the comparison happens.

What each layer stops:

* plain data only: ``__eq__``/``__ne__``/``__bool__``/``__hash__`` tricks, subclasses of
  ``int``/``str``/``list``..., lazy or proxy objects (``NaN`` is a real float and compares as one);
* separate processes: reading the expected value from the calling frame (``sys._getframe``,
  ``inspect``, tracebacks, ``gc``), patching builtins or modules the check uses (``math``,
  ``copy``, ``random``...), redefining the prompt's helpers (``poly``, ``encode_cyclic``),
  replacing ``check`` or the assertion machinery;
* check source only in the non-dumpable checker: building an answer key from test files (there
  are none in the sandbox), ``/proc/<checker>/{mem,fd,environ}``, ``ptrace``, ``pidfd_getfd``;
* fail closed: the checker killed, stopped or starved, a missing, repeated or malformed verdict,
  a non-zero exit, a signal to the checker, the candidate exiting (``sys.exit``, ``os._exit``),
  a timeout, an oversized or garbled answer, a dead sandbox: all score 0, with the reason in
  ``GradeResult.integrity`` (tampering) or ``log``; a sandbox the candidate killed is a task
  failure, not an infrastructure failure;
* detection of the grading run gains nothing: whatever the candidate does once it knows, its
  answers are still compared where it cannot reach.

Not covered: the checker and the candidate share a uid inside the sandbox, so the candidate
can kill or starve the checker (that scores 0, it cannot score 1); a candidate can still
special-case the inputs it sees (hard-coding answers to a weak check is a weakness of the
check); in-place mutation of arguments and object identity are not observed (calls get
copies); results must be built-in plain data (a numpy scalar fails the call); after a stop
(timeout, crash) the remaining io cases fail, the candidate is not restarted; the candidate's
harness (``python3 -I -B -c``, no pytest) differs from an agent's ``run_tests``, which only
tells it that it is being graded, and that gains it nothing here; the sandbox helper's own
hardening is the sandbox backend's job.
"""

from __future__ import annotations

import json
import math
import secrets
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agentgym.envs.coding import plaindata
from agentgym.envs.coding.grading import GradeResult
from agentgym.envs.coding.repo import (
    Changes,
    TaskFormatError,
    changed_repository,
    make_task,
    split_changes,
    test_paths_of,
)
from agentgym.errors import GraderError
from agentgym.tasks import Task

if TYPE_CHECKING:
    from agentgym.envs.coding.sandboxing import SandboxProvider
    from agentgym.sandboxes import ExecResult

_HERE = Path(__file__).resolve().parent
_PROGRAM = (_HERE / "plaindata.py").read_text() + "\n" + (_HERE / "_function_runner.py").read_text()
CHECKER = _PROGRAM + "\nchecker_main()\n"
"""The checker program (``python3 -I -B -c CHECKER``, configuration on stdin)."""
CHILD = _PROGRAM + "\nchild_main()\n"
"""The candidate child's program (started by the checker)."""


def is_function_task(task: Task) -> bool:
    """True when ``task`` is graded by :class:`FunctionGrader` (its verifier has a ``function`` spec)."""
    verifier = getattr(task, "verifier", None)
    return isinstance(verifier, dict) and isinstance(verifier.get("function"), dict)


def function_spec(task: Task) -> tuple[dict[str, Any], list[str]]:
    """The validated ``function`` spec of ``task`` and the node ids its outcomes are reported under."""
    spec = task.verifier["function"]

    def fail(msg: str) -> NoReturn:
        raise TaskFormatError(f"task {task.id!r}: verifier['function'] {msg}")

    if not isinstance(spec.get("entry_point"), str) or not spec["entry_point"].isidentifier():
        fail("needs 'entry_point', the name of the function to grade")
    if not isinstance(spec.get("module"), str) or not spec["module"].endswith(".py"):
        fail("needs 'module', the .py file that defines it, e.g. 'solution.py'")
    nodeids = list(spec.get("nodeids") or task.verifier.get("fail_to_pass") or [])
    if ("check" in spec) == ("cases" in spec):
        fail("needs exactly one of 'check' (source defining check(candidate)) and 'cases'")
    if "check" in spec:
        if not isinstance(spec["check"], str) or len(nodeids) != 1:
            fail("with 'check' reports one outcome: give one node id in 'nodeids' or fail_to_pass")
    elif not isinstance(spec["cases"], list) or not spec["cases"] or len(nodeids) != len(spec["cases"]):
        fail("'cases' must be a non-empty list with one node id per case ('nodeids' or fail_to_pass)")
    return spec, nodeids


def _tagged_cases(task: Task, cases: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, case in enumerate(cases):
        try:
            if not isinstance(case, dict) or "expected" not in case:
                raise TypeError("each case is {'args': [...], 'kwargs': {...}, 'expected': value}")
            out.append(
                {
                    "args": plaindata.to_tagged(tuple(case.get("args", []))),
                    "kwargs": plaindata.to_tagged(dict(case.get("kwargs", {}))),
                    "expected": plaindata.to_tagged(case["expected"]),
                }
            )
        except (TypeError, ValueError) as e:
            raise TaskFormatError(f"task {task.id!r}: case {i}: {e}") from None
    return out


class FunctionGrader:
    """Grades function tasks in fresh sandboxes from ``provider`` (see the module docstring).

    ``timeout`` bounds the whole check, ``call_timeout`` each call (a task's spec may set its
    own), ``max_result_bytes`` the encoded size of one result.
    """

    def __init__(
        self,
        provider: SandboxProvider,
        timeout: float = 60.0,
        call_timeout: float = 10.0,
        max_result_bytes: int = 8 << 20,
    ):
        self.provider = provider
        self.timeout = timeout
        self.call_timeout = call_timeout
        self.max_result_bytes = max_result_bytes

    def grade_files(self, task: Task, files: Mapping[str, str | None]) -> GradeResult:
        """Grade a set of changed files (``None`` deletes), e.g. a single-turn completion."""
        return self.grade(task, split_changes(task.setup["files"], files, test_paths_of(task)))

    def grade(self, task: Task, changes: Changes) -> GradeResult:
        """The verdict on ``changes`` (the agent's applied files) for function task ``task``."""
        from agentgym.sandboxes import SandboxError

        try:
            return self._grade(task, changes)
        except SandboxError as error:
            if not changes.applied:
                raise
            # The candidate shares the sandbox: it can kill every process of its uid, the helper
            # included. If the pristine module grades fine, the candidate did it: a 0, not an
            # infrastructure failure that a trainer would mask.
            self._grade(task, Changes({}, {}))
            _, nodeids = function_spec(task)
            return GradeResult(
                dict.fromkeys(nodeids, "failed"),
                {},
                applied=sorted(changes.applied),
                ignored=dict(changes.ignored),
                log=str(error)[-2000:],
                integrity=[f"the sandbox died while the candidate ran ({type(error).__name__})"],
            )

    def _grade(self, task: Task, changes: Changes) -> GradeResult:
        start = time.monotonic()
        spec, nodeids = function_spec(task)
        result = GradeResult(
            dict.fromkeys(nodeids, "failed"), {}, applied=sorted(changes.applied), ignored=dict(changes.ignored)
        )
        files = changed_repository(task, changes)
        if spec["module"] not in files:
            result.log = f"{spec['module']} does not exist, so {spec['entry_point']} cannot be imported"
            return result
        nonce = "@@agentgym-function-" + secrets.token_hex(16) + "@@"
        timeout = float(self.timeout)
        cfg: dict[str, Any] = {
            "nonce": nonce,
            "child": CHILD,
            "nodeids": nodeids,
            "entry_point": spec["entry_point"],
            "module": spec["module"],
            "prelude": spec.get("prelude", ""),
            "timeout": timeout,
            "call_timeout": min(float(spec.get("call_timeout", self.call_timeout)), timeout),
            "max_result_bytes": int(self.max_result_bytes),
        }
        if "check" in spec:
            cfg.update(mode="check", check=spec["check"])
        else:
            cfg.update(
                mode="cases", cases=_tagged_cases(task, spec["cases"]), float_tol=float(spec.get("float_tol", 0.0))
            )
        with tempfile.TemporaryDirectory(prefix="agentgym-fgrade-") as tmp:
            for path, content in files.items():
                dest = Path(tmp, path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(content)
            sandbox = self.provider.acquire(tmp)
        try:
            res = sandbox.exec(["python3", "-I", "-B", "-c", CHECKER], stdin=json.dumps(cfg), timeout=timeout + 10.0)
        finally:
            self.provider.release(sandbox)
        result.exit_code, result.timed_out = res.exit_code, res.timed_out
        self._verify(result, res, nonce, nodeids)
        result.duration = time.monotonic() - start
        return result

    @staticmethod
    def _verify(result: GradeResult, res: ExecResult, nonce: str, nodeids: list[str]) -> None:
        """Fill ``result`` from the checker's verdict; anything unexpected fails it, with the reason."""
        flag = result.integrity.append
        if res.timed_out:
            flag("the checker did not finish in time: it was stopped or starved by the candidate's processes")
            return
        lines = [line for line in res.stdout.splitlines() if line.startswith(nonce)]
        if len(lines) != 1:
            flag(
                f"expected one verdict from the checker, found {len(lines)} (exit status {res.exit_code}): "
                "the checker was killed or its output tampered with"
            )
            result.log = res.stderr[-2000:]
            return
        try:
            verdict = json.loads(lines[0][len(nonce) :])
            if not isinstance(verdict, dict):
                raise ValueError("not an object")
        except ValueError as e:
            flag(f"the checker's verdict does not parse ({e})")
            return
        if "infra" in verdict:  # only reported before the candidate's process exists
            raise GraderError(f"function grading cannot run in this sandbox: {_text(verdict['infra'])}")
        if "task_error" in verdict:
            result.anomalies.append(_text(verdict["task_error"])[:500])
            return
        if res.exit_code != 0:
            flag(f"the checker exited with status {res.exit_code} after its verdict")
            return
        outcomes, failures, integrity = verdict.get("outcomes"), verdict.get("failures"), verdict.get("integrity")
        if not (
            isinstance(outcomes, dict)
            and set(outcomes) == set(nodeids)
            and all(o in ("passed", "failed") for o in outcomes.values())
            and isinstance(failures, list)
            and isinstance(integrity, list)
            and all(isinstance(x, str) for x in failures + integrity)
            and isinstance(verdict.get("timed_out"), bool)
        ):
            flag("the checker's verdict is malformed")
            return
        result.fail_to_pass = {n: outcomes[n] for n in nodeids}
        integrity, failures = [_text(x) for x in integrity], [_text(x) for x in failures]
        result.integrity.extend(integrity)
        result.timed_out = verdict["timed_out"]
        result.log = "\n".join([*integrity, *failures])[-4000:]


def _text(value: object) -> str:
    """``value`` as a string that encodes to UTF-8.

    The candidate's exception messages reach the verdict, and a lone surrogate in them would
    make every later write of the log raise.
    """
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def python_literal(value: Any) -> str:
    """Python source that evaluates to plain ``value`` (``nan``/``inf`` included)."""
    t = type(value)
    if t is float:
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if t is complex:
        return f"complex({python_literal(value.real)}, {python_literal(value.imag)})"
    if t in (list, tuple, set, frozenset):
        items = ", ".join(python_literal(v) for v in value)
        if t is list:
            return f"[{items}]"
        if t is tuple:
            return f"({items}{',' if len(value) == 1 else ''})"
        return f"{t.__name__}([{items}])"
    if t is dict:
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    plaindata.to_tagged(value)  # raises NotPlainError for anything else
    return repr(value)


def function_task(
    task_id: str,
    prompt: str,
    *,
    entry_point: str,
    stub: str,
    solution: str,
    cases: list[dict[str, Any]] | None = None,
    check: str | None = None,
    prelude: str = "",
    module: str = "solution.py",
    float_tol: float = 0.0,
    source: str = "custom",
    split: str | None = None,
    **metadata: Any,
) -> Task:
    """A function task in the coding format.

    ``stub`` is the starting ``module``, ``solution`` the reference; graded by ``cases``
    (``{"args", "kwargs", "expected"}``, one outcome each) or by ``check`` (source defining
    ``check(candidate)``; ``prelude`` is the trusted code it needs).

    A hidden pytest file is generated too, so graders that only read ``fail_to_pass`` still work.
    """
    if (cases is None) == (check is None):
        raise TaskFormatError(f"task {task_id!r}: give exactly one of cases= and check=")
    name = module[:-3].replace("/", ".")
    if check is not None:
        hidden_path = "tests/test_check.py"
        nodeids = [f"{hidden_path}::test_check"]
        hidden = (
            f"{prelude}\nfrom {name} import {entry_point}\n{check}\n\n\ndef test_check():\n    check({entry_point})\n"
        )
        spec: dict[str, Any] = {"check": check, "prelude": prelude}
    else:
        assert cases is not None
        hidden_path = "tests/test_function_cases.py"
        nodeids = [f"{hidden_path}::test_case_{i}" for i in range(len(cases))]
        import inspect

        lines = [f"import math\n\nfrom {name} import {entry_point}\n\n", inspect.getsource(plaindata.plain_equal)]
        for i, case in enumerate(cases):
            args = ", ".join(
                [
                    *(python_literal(a) for a in case.get("args", [])),
                    *(f"{k}={python_literal(v)}" for k, v in case.get("kwargs", {}).items()),
                ]
            )
            lines.append(
                f"\n\ndef test_case_{i}():\n    assert plain_equal({entry_point}({args}), "
                f"{python_literal(case['expected'])}, {float_tol!r})\n"
            )
        hidden = "".join(lines)
        spec = {"cases": [dict(c) for c in cases], "float_tol": float_tol}
    task = make_task(
        task_id,
        prompt,
        files={module: stub},
        fail_to_pass=nodeids,
        solution={module: solution},
        hidden_tests={hidden_path: hidden},
        source=source,
        split=split,
        entry_point=entry_point,
        **metadata,
    )
    task.verifier["function"] = {"entry_point": entry_point, "module": module, "nodeids": nodeids, **spec}
    function_spec(task)
    if cases is not None:
        _tagged_cases(task, spec["cases"])
    return task
