"""Red team for function-level grading (HumanEval and input/expected-output tasks).

Every cheat is a wrong solution that tries to win the reward one way; each must score 0
under :class:`FunctionGrader` while the canonical solution scores 1 in the same test, on the
local and the Docker sandbox. Where a cheat does win a naive in-process harness (prompt +
completion + check in one interpreter, pass = exit status 0, the way the hidden test used to
run), the test shows that too, so the cheat is known to be a real one.
"""

from __future__ import annotations

import json
import math
import secrets
import textwrap

import pytest
from coding_helpers import BACKENDS, require_backend

from agentgym.envs.coding import plaindata
from agentgym.envs.coding.function_grading import (
    FunctionGrader,
    function_task,
    is_function_task,
)
from agentgym.envs.coding.humaneval import SOLUTION, load_humaneval
from agentgym.envs.coding.sandboxing import SandboxProvider
from agentgym.tasks import Task

# problem -> (a base type of its result, a wrong value of that type)
PROBLEMS = {
    "HumanEval/0": (int, 7),  # bool results (bool cannot be subclassed)
    "HumanEval/2": (float, 9.0),  # floats compared with a tolerance
    "HumanEval/8": (tuple, (9, 9)),  # tuple results
    "HumanEval/29": (list, ["zzz"]),  # list results
    "HumanEval/32": (float, 1e9),  # find_zero, checked through the prompt's poly()
    "HumanEval/38": (str, "zzz"),  # decode_cyclic, checked through the prompt's encode_cyclic()
}
ALL = list(PROBLEMS)


def he(problem: str) -> Task:
    return load_humaneval()[problem]


def module_for(task: Task, cheat: str, problem: str) -> str:
    """The stub prompt, then the cheat (which redefines the entry point)."""
    base, wrong = PROBLEMS[problem]
    code = textwrap.dedent(cheat).replace("ENTRY", task.metadata["entry_point"])
    code = code.replace("BASE", base.__name__).replace("WRONG", repr(wrong))
    return task.metadata["humaneval_prompt"] + "    pass\n\n\n" + code


@pytest.fixture(scope="module", params=BACKENDS)
def grader(request: pytest.FixtureRequest):
    require_backend(request.param)
    provider = SandboxProvider(request.param)
    yield FunctionGrader(provider, timeout=12.0, call_timeout=3.0, max_result_bytes=1 << 20)
    provider.close()


def score(grader: FunctionGrader, task: Task, module: str) -> float:
    result = grader.grade_files(task, {SOLUTION: module})
    score.last = result  # type: ignore[attr-defined]
    return float(result.resolved)


def naive_passes(grader: FunctionGrader, task: Task, module: str) -> bool:
    """Prompt + completion + check in one interpreter; passes when it exits 0 (the old, in-process way)."""
    import tempfile
    from pathlib import Path

    spec = task.verifier["function"]
    program = f"{module}\n\n{spec['check']}\n\ncheck({spec['entry_point']})\n"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "solution.py").write_text(module)
        Path(tmp, "tests").mkdir()
        Path(tmp, "tests", "test_check.py").write_text(task.verifier["hidden_tests"]["tests/test_check.py"])
        sandbox = grader.provider.acquire(tmp)
    try:
        return sandbox.exec(["python3", "-c", program], timeout=30).exit_code == 0
    finally:
        grader.provider.release(sandbox)


def assert_cheat_fails(
    grader: FunctionGrader, cheat: str, problems: list[str], *, flagged: bool = False, naive: list[str] = ()
) -> None:
    for problem in problems:
        task = he(problem)
        honest = task.solution["files"][SOLUTION]
        assert score(grader, task, honest) == 1.0, (problem, score.last.summary(), score.last.log)
        module = module_for(task, cheat, problem)
        assert score(grader, task, module) == 0.0, (problem, score.last.summary())
        if flagged:
            assert score.last.integrity, (problem, score.last.summary(), score.last.log)
        if problem in naive and grader.provider.kind == "local":
            assert naive_passes(grader, task, module), f"{problem}: the cheat does not even beat the naive harness"


# --- results that fake equality -------------------------------------------------------------

ALWAYS_EQUAL = """
class _Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __hash__(self): return 0
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __sub__(self, other): return self
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __sub__
    def __abs__(self): return self
    __neg__ = __pos__ = __abs__
    def __float__(self): return 0.0
    def __index__(self): return 0
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __getitem__(self, i): return self

def ENTRY(*args, **kwargs):
    return _Any()
"""

SUBCLASS = """
_Fake = type("_Fake", (BASE,), {
    "__eq__": lambda s, o: True, "__ne__": lambda s, o: False, "__hash__": lambda s: 0, "__bool__": lambda s: True,
    "__lt__": lambda s, o: True, "__gt__": lambda s, o: True, "__sub__": lambda s, o: s, "__rsub__": lambda s, o: s,
    "__abs__": lambda s: s,
})

def ENTRY(*args, **kwargs):
    return _Fake(WRONG)
"""

TRUTHY_COMPARISON = """
class _Yes:
    def __bool__(self): return True

class _R:
    def __eq__(self, other): return _Yes()
    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __sub__(self, other): return self
    __rsub__ = __sub__
    def __abs__(self): return self

def ENTRY(*args, **kwargs):
    return _R()
"""

NAN = """
def ENTRY(*args, **kwargs):
    return float("nan")
"""

NAN_INSIDE = """
def ENTRY(*args, **kwargs):
    return [float("nan")] if BASE in (list, tuple) else (float("nan"), float("nan"))
"""


def test_always_equal_objects(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, ALWAYS_EQUAL, ALL, flagged=True, naive=["HumanEval/0", "HumanEval/2", "HumanEval/38"])


def test_subclasses_of_plain_types_with_forged_comparison(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, SUBCLASS, ALL, flagged=True, naive=["HumanEval/2", "HumanEval/8", "HumanEval/29"])


def test_truthy_comparison_results(grader: FunctionGrader) -> None:
    assert_cheat_fails(
        grader,
        TRUTHY_COMPARISON,
        ["HumanEval/0", "HumanEval/2", "HumanEval/29"],
        flagged=True,
        naive=["HumanEval/0", "HumanEval/2"],
    )


def test_nan_results(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, NAN, ["HumanEval/2", "HumanEval/32"])
    assert_cheat_fails(grader, NAN_INSIDE, ["HumanEval/8", "HumanEval/29"])


# --- reading the expected value from the caller ----------------------------------------------

FRAME_TEMPLATE = """
import dis, sys

def _expected(frame):
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset <= frame.f_lasti:
            continue
        if ins.opname == "LOAD_CONST":
            return ins.argval
        if ins.opname in ("LOAD_FAST", "LOAD_NAME", "LOAD_DEREF"):
            return frame.f_locals.get(ins.argval, frame.f_globals.get(ins.argval))
        if ins.opname == "LOAD_GLOBAL":
            return frame.f_globals.get(ins.argval)
    return None

def _caller(args):
    METHOD

def ENTRY(*args, **kwargs):
    frame = _caller(args)
    while frame is not None and frame.f_code.co_name in ("_caller", "ENTRY"):
        frame = frame.f_back
    return _expected(frame) if frame is not None else None
"""
FRAME_METHODS = {
    "sys._getframe": "return sys._getframe(0)",
    "inspect": "import inspect\n    return inspect.currentframe()",
    "traceback": "try:\n        raise ValueError\n    except ValueError:\n        return sys.exc_info()[2].tb_frame",
    "gc.get_referrers": (
        "import gc\n    frames = [r for a in args for r in gc.get_referrers(a) if type(r).__name__ == 'frame'"
        " and r.f_code.co_name not in ('_caller', 'ENTRY')]\n    return frames[0] if frames else sys._getframe(0)"
    ),
}


@pytest.mark.parametrize("method", list(FRAME_METHODS))
def test_reading_the_expected_value_from_the_calling_frame(grader: FunctionGrader, method: str) -> None:
    cheat = FRAME_TEMPLATE.replace("METHOD", FRAME_METHODS[method])
    naive = ["HumanEval/0", "HumanEval/2", "HumanEval/8"] if method != "gc.get_referrers" else []
    assert_cheat_fails(grader, cheat, ["HumanEval/0", "HumanEval/2", "HumanEval/8", "HumanEval/38"], naive=naive)


# --- building an answer key from the check's source -----------------------------------------

ANSWER_KEY = """
import ast, os

def _sources():
    found = []
    def consider(data):
        text = data.decode("utf-8", "replace")
        if "def check(candidate)" in text:
            found.append(text[text.index("def check(candidate)"):])
    for root in ("/", "/workspace", os.getcwd(), "/tmp", "/dev/shm", "/var/tmp", "/run"):
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if os.path.join(d, x) not in ("/proc", "/sys", "/usr", "/dev")]
            for name in files:
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        consider(f.read(1 << 20))
                except OSError:
                    pass
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    consider(f.read())
            except OSError:
                pass
    return found

def _key():
    key = []
    for src in _sources():
        for line in src.splitlines():
            line = line.strip()
            if line.startswith("assert candidate(") and "==" in line:
                call, _, expected = line[len("assert "):].partition("==")
                try:
                    key.append((ast.literal_eval("(" + call.strip()[len("candidate("):-1] + ",)"),
                                ast.literal_eval(expected.strip())))
                except (ValueError, SyntaxError):
                    pass
    return key

_KEY = _key()

def ENTRY(*args, **kwargs):
    for given, expected in _KEY:
        if list(given) == list(args):
            return expected
    return WRONG
"""


def test_answer_key_from_the_check_source(grader: FunctionGrader) -> None:
    assert_cheat_fails(
        grader, ANSWER_KEY, ["HumanEval/0", "HumanEval/8", "HumanEval/29"], naive=["HumanEval/0", "HumanEval/29"]
    )


# --- behaving differently under grading ------------------------------------------------------

DETECT_GRADING = """
import os, sys
import __main__

def _grading():
    signs = [
        "pytest" not in sys.modules,
        sys.flags.isolated, sys.flags.dont_write_bytecode,
        any(a.startswith("-") for a in sys.argv),
        any(k.startswith(("AGENTGYM", "PYTEST", "GRAD")) for k in os.environ),
        any(n in vars(__main__) for n in ("check", "checker_main", "child_main", "candidate")),
        not os.path.exists("tests/test_examples.py"),
    ]
    return any(signs)

class _Any:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __abs__(self): return self
    def __sub__(self, other): return self
    __rsub__ = __sub__
    def __lt__(self, other): return True

def ENTRY(*args, **kwargs):
    if _grading():
        main = vars(__main__)
        for name in ("check", "checker_main"):
            if callable(main.get(name)):
                main[name] = lambda *a, **k: None
        return _Any()
    return WRONG
"""


def test_detecting_the_grading_run_gains_nothing(grader: FunctionGrader) -> None:
    assert_cheat_fails(
        grader,
        DETECT_GRADING,
        ["HumanEval/0", "HumanEval/2", "HumanEval/38"],
        flagged=True,
        naive=["HumanEval/0", "HumanEval/2", "HumanEval/38"],
    )


# --- patching what the check uses ------------------------------------------------------------

PATCH_BUILTINS = """
import builtins, copy, math, random, string

builtins.abs = lambda x: 0
builtins.all = builtins.any = lambda *a, **k: True
builtins.AssertionError = type("AssertionError", (Exception,), {})
math.fabs = lambda x: 0.0
math.isclose = lambda *a, **k: True
copy.deepcopy = lambda x, memo=None: x
random.randint = lambda a, b: a
random.choice = lambda seq: seq[0]
string.ascii_lowercase = "a"
_ = random.Random

def ENTRY(*args, **kwargs):
    return WRONG if BASE is not str else "a" * len(args[0])
"""

SHADOW_HELPERS = """
def poly(*args, **kwargs):
    return 0.0

def encode_cyclic(s):
    return s

def ENTRY(*args, **kwargs):
    return args[0] if isinstance(args[0], str) else WRONG
"""

SKIP_ASSERTS = """
import sys, threading

def _local(frame, event, arg):
    # hijack check() through the trace machinery: leave it "successfully" before its first assert
    if event == "line":
        raise SystemExit(0)
    return _local

def _global(frame, event, arg):
    return _local if frame.f_code.co_name in ("check", "checker_main") else None

sys.settrace(_global)
threading.settrace(_global)

def ENTRY(*args, **kwargs):
    return WRONG
"""

EXIT_AT_EXIT = """
import atexit, os, sys
atexit.register(lambda: os._exit(0))
sys.excepthook = lambda *a: os._exit(0)

def ENTRY(*args, **kwargs):
    return WRONG
"""


def test_patching_builtins_and_modules_the_check_uses(grader: FunctionGrader) -> None:
    assert_cheat_fails(
        grader, PATCH_BUILTINS, ["HumanEval/2", "HumanEval/32", "HumanEval/38"], naive=["HumanEval/32", "HumanEval/38"]
    )


def test_shadowing_the_prompts_helpers(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, SHADOW_HELPERS, ["HumanEval/32", "HumanEval/38"], naive=["HumanEval/32", "HumanEval/38"])


def test_patching_the_check_and_its_assertions(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, SKIP_ASSERTS, ["HumanEval/0", "HumanEval/8"], naive=["HumanEval/0", "HumanEval/8"])
    assert_cheat_fails(grader, EXIT_AT_EXIT, ["HumanEval/0", "HumanEval/29"], naive=["HumanEval/0", "HumanEval/29"])


# --- ending, killing, stalling, flooding -----------------------------------------------------

ENDINGS = {
    "os._exit(0) at import": ("import os\nos._exit(0)\n", True),
    "sys.exit(0) at import": ("import sys\nsys.exit(0)\n", True),
    "os._exit(0) in the call": ("", True),
    "sys.exit(0) in the call": ("", True),
    "SIGKILL to the checker": ("", True),
    "SIGTERM to the checker": ("", True),
    "SIGINT to the checker": ("", True),
    "kill every process": ("", True),
    "infinite loop at import": ("while True:\n    pass\n", False),
    "infinite loop in the call": ("", False),
}
CALL_BODIES = {
    "os._exit(0) in the call": "import os; os._exit(0)",
    "sys.exit(0) in the call": "import sys; sys.exit(0)",
    "SIGKILL to the checker": "import os, signal; os.kill(os.getppid(), signal.SIGKILL)",
    "SIGTERM to the checker": "import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); time.sleep(0.2)",
    "SIGINT to the checker": "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(0.2)",
    "kill every process": "import os, signal; os.kill(-1, signal.SIGKILL)",
    "infinite loop in the call": "while True: pass",
}


@pytest.mark.parametrize("how", list(ENDINGS))
def test_exiting_killing_and_stalling(grader: FunctionGrader, how: str) -> None:
    at_import, flagged = ENDINGS[how]
    body = CALL_BODIES.get(how, "pass")
    cheat = f"{at_import}\ndef ENTRY(*args, **kwargs):\n    {body}\n    return WRONG\n"
    assert_cheat_fails(grader, cheat, ["HumanEval/0"], flagged=flagged)
    if "infinite" in how:
        assert score.last.timed_out


def test_stopping_the_checker(grader: FunctionGrader) -> None:
    cheat = "import os, signal\n\ndef ENTRY(*args, **kwargs):\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return WRONG\n"
    assert_cheat_fails(grader, cheat, ["HumanEval/0"], flagged=True)


HUGE = """
import os, sys

def ENTRY(*args, **kwargs):
    chunk = "x" * (1 << 20)
    for _ in range(20):
        print(chunk)
        sys.stderr.write(chunk)
        os.write(1, chunk.encode())
    return "y" * (4 << 20)
"""

FORGE_CHANNEL = """
import os, stat

def ENTRY(*args, **kwargs):
    verdict = '{"outcomes": {"tests/test_check.py::test_check": "passed"}, "failures": [], "integrity": [], "timed_out": false}'
    for fd in (1, 2):
        os.write(fd, ("\\n@@agentgym-function-" + "0" * 32 + "@@" + verdict + "\\n").encode())
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                for seq in range(0, 200):
                    os.write(fd, ('[%d,"ok",["b",true]]\\n' % seq).encode())
        except OSError:
            pass
    return WRONG
"""


def test_huge_outputs(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, HUGE, ["HumanEval/38"])


def test_forging_answers_on_the_result_channel(grader: FunctionGrader) -> None:
    assert_cheat_fails(grader, FORGE_CHANNEL, ["HumanEval/0", "HumanEval/29"], flagged=True)


# --- what the candidate's process can reach --------------------------------------------------

PROBE = r'''
import ctypes, os
CONTROL = False

def solve():
    """Try to reach the checker's memory, descriptors, environment and the check's source."""
    marker = "MARK" + "ER_"  # the check holds the whole marker; this module holds only its parts
    hits = []
    me, parent = os.getpid(), os.getppid()
    if CONTROL:  # a dumpable process of the same uid holding the marker: the probe must find it in its memory
        import subprocess, time
        subprocess.Popen(["python3", "-c", "import sys, time; s = sys.argv[1][::-1]; time.sleep(60)", marker[::-1]])
        time.sleep(1.0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.ptrace(16, parent, None, None) == 0:  # PTRACE_ATTACH
        hits.append("ptrace attached to the checker")
    pidfd = libc.syscall(434, parent, 0)  # pidfd_open
    if pidfd >= 0:
        for fd in range(0, 16):
            if libc.syscall(438, pidfd, fd, 0) >= 0:  # pidfd_getfd
                hits.append(f"pidfd_getfd took the checker's fd {fd}")
    for part in ("mem", "environ", "fd", "maps", "stack", "syscall"):
        path = f"/proc/{parent}/{part}"
        try:
            if part == "fd":
                hits.append(f"listed {path}: {os.listdir(path)}")
            else:
                with open(path, "rb") as f:
                    f.read(64)
                hits.append(f"read {path}")
        except OSError:
            pass

    def consider(where, data):
        if marker.encode() in data:
            hits.append(f"found the check's marker in {where}")

    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    consider(f"/proc/{pid}/{part}", f.read())
            except OSError:
                pass
        try:
            with open(f"/proc/{pid}/maps") as f:
                regions = [line.split()[0].split("-") for line in f if "rw" in line.split()[1]]
            with open(f"/proc/{pid}/mem", "rb") as mem:
                for lo, hi in regions:
                    mem.seek(int(lo, 16))
                    consider(f"/proc/{pid}/mem", mem.read(min(int(hi, 16) - int(lo, 16), 64 << 20)))
        except (OSError, ValueError, OverflowError):
            pass
    for root in ("/",):
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if os.path.join(d, x) not in ("/proc", "/sys", "/usr", "/dev")]
            for name in files:
                try:
                    fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_NONBLOCK)
                    try:
                        consider(os.path.join(d, name), os.read(fd, 1 << 22))
                    finally:
                        os.close(fd)
                except OSError:
                    pass
    return hits
'''


def test_the_candidate_cannot_reach_the_checker_or_the_check_source(grader: FunctionGrader) -> None:
    marker = "MARKER_" + secrets.token_hex(8)
    check = f"def check(candidate):\n    secret = {marker!r}\n    hits = candidate()\n    assert hits == [], hits\n"
    task = function_task(
        "probe",
        "Report what you can reach.",
        entry_point="solve",
        stub="def solve():\n    return []\n",
        solution="def solve():\n    return []\n",
        check=check,
    )
    result = grader.grade_files(task, {"solution.py": PROBE})
    assert result.resolved, result.log
    # the probe itself works: given the marker in its own workspace, it finds it
    planted = (
        PROBE.replace('"MARK" + "ER_"', repr(marker)).replace("CONTROL = False", "CONTROL = True") + f"\n# {marker}\n"
    )
    result = grader.grade_files(task, {"solution.py": planted})
    assert not result.resolved and "found the check's marker in" in result.log and "solution.py" in result.log, (
        result.log
    )
    assert "/mem" in result.log, result.log  # it reads the memory of a dumpable process, not of the checker


# --- io-case tasks ---------------------------------------------------------------------------


def io_task() -> Task:
    cases = [
        {"args": [[3, 1, 2]], "expected": ([1, 2, 3], 3)},
        {"args": [[]], "expected": ([], 0)},
        {"args": [[2.5, -0.0]], "kwargs": {"reverse": True}, "expected": ([2.5, -0.0], 2)},
    ]
    stub = "def sort_count(xs, reverse=False):\n    raise NotImplementedError\n"
    solution = "def sort_count(xs, reverse=False):\n    return sorted(xs, reverse=reverse), len(xs)\n"
    return function_task(
        "sort-count",
        "Return the sorted list and its length as a tuple.",
        entry_point="sort_count",
        stub=stub,
        solution=solution,
        cases=cases,
    )


def test_io_case_tasks(grader: FunctionGrader) -> None:
    task = io_task()
    assert is_function_task(task) and len(task.verifier["fail_to_pass"]) == 3
    good = grader.grade_files(task, task.solution["files"])
    assert good.resolved and set(good.fail_to_pass.values()) == {"passed"}, good.log
    # a list instead of a tuple fails every case; a partial solution gets a fraction
    as_list = "def sort_count(xs, reverse=False):\n    return [sorted(xs, reverse=reverse), len(xs)]\n"
    assert grader.grade_files(task, {"solution.py": as_list}).f2p_fraction == 0.0
    partial = "def sort_count(xs, reverse=False):\n    return sorted(xs), len(xs)\n"
    assert grader.grade_files(task, {"solution.py": partial}).f2p_fraction == pytest.approx(2 / 3)
    cheat = "class _A(tuple):\n    __eq__ = lambda s, o: True\n\ndef sort_count(xs, reverse=False):\n    return _A()\n"
    result = grader.grade_files(task, {"solution.py": cheat})
    assert result.f2p_fraction == 0.0 and result.integrity


@pytest.mark.parametrize("problem", ["HumanEval/0"])
def test_unencodable_exception_messages_cannot_break_the_report(grader: FunctionGrader, problem: str) -> None:
    """A lone surrogate in the candidate's exception text (or class name) must not reach
    ``GradeResult``: writing the log as UTF-8 anywhere later would raise on the host.
    """
    task = he(problem)
    cheat = (
        "Bad = type('Bad', (ValueError,), {'__module__': 'x\\udfff'})\n\n"
        "def ENTRY(*args):\n    raise Bad('\\ud800 \\udfff')\n"
    )
    result = grader.grade_files(task, {SOLUTION: module_for(task, cheat, problem)})
    assert not result.resolved and not result.integrity, result.log
    assert "\\ud800" in result.log, result.log
    for text in (result.log, *result.integrity, *result.anomalies):
        text.encode("utf-8")


# --- the decoder -----------------------------------------------------------------------------

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    2**200,
    -(3**150),
    1.5,
    -0.0,
    float("inf"),
    float("-inf"),
    5e-324,
    1e308,
    complex(1.5, -2),
    "",
    "héllo\x00\ud800",
    b"\x00\xff",
    [],
    (),
    [1, (2, 3)],
    (1,),
    {1, "a"},
    frozenset({(1, 2)}),
    {"a": [1, 2], (1, 2): {"b": None}, 3: 4.0},
    [[[[]]]],
    {frozenset({1}): (True, False)},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_plain_values_round_trip_exactly(value: object) -> None:
    back = plaindata.loads(plaindata.dumps(value))
    assert type(back) is type(value) and back == value and repr(back) == repr(value)
    assert plaindata.plain_equal(back, value)


def test_types_and_special_floats_stay_distinct() -> None:
    assert type(plaindata.loads(plaindata.dumps((1, 2)))) is tuple
    assert type(plaindata.loads(plaindata.dumps([1, 2]))) is list
    assert plaindata.loads(plaindata.dumps(True)) is True and type(plaindata.loads(plaindata.dumps(1))) is int
    nan = plaindata.loads(plaindata.dumps(math.nan))
    assert math.isnan(nan) and nan is not math.nan and [nan] != [math.nan]
    assert math.copysign(1, plaindata.loads(plaindata.dumps(-0.0))) == -1
    assert not plaindata.plain_equal([1, 2], (1, 2)) and not plaindata.plain_equal(True, 1)
    assert not plaindata.plain_equal(1, True) and not plaindata.plain_equal(2.0, 2)  # (got, expected)
    assert plaindata.plain_equal(2, 2.0) and not plaindata.plain_equal(True, 1.0)
    assert plaindata.plain_equal(0.1 + 0.2, 0.3, 1e-9) and not plaindata.plain_equal(0.1 + 0.2, 0.3)


INF = float("inf")


@pytest.mark.parametrize(
    ("got", "expected", "tol"),
    [
        (5.0, INF, 1e-6),
        (-INF, INF, 1e-6),
        (INF, -INF, 0.5),
        (1e308, INF, 1.0),
        (complex(1, 1), complex(INF, 1), 1e-3),
        *[
            (got, expected, 0.0)
            for got, expected in [
                ({True}, {1}),
                ({1}, {True}),
                ({1}, {1.0}),
                (frozenset({0}), frozenset({False})),
                ({(1,)}, {(True,)}),
                ({frozenset({True})}, {frozenset({1})}),
                ({complex(1, 0)}, {1.0}),
                ([{True, 2}], [{1, 2}]),
                ({True: "a"}, {1: "a"}),
                ({1.0: "a"}, {1: "a"}),
                ({(1, True): 0}, {(1, 1): 0}),
                ({"k": {True}}, {"k": {1}}),
            ]
        ],
    ],
    ids=repr,
)
def test_sets_dict_keys_and_infinities_stay_strict(got: object, expected: object, tol: float) -> None:
    """Python's ``==`` takes True for 1 in set members and dict keys, and ``inf - x`` is within any
    relative tolerance of ``inf``: neither may let a wrong result pass.
    """
    assert plaindata.plain_equal(expected, expected, tol)
    assert not plaindata.plain_equal(got, expected, tol)


def test_equal_sets_dicts_and_infinities_still_pass() -> None:
    nan = float("nan")
    assert plaindata.plain_equal({1, 2, (3, "a")}, {(3, "a"), 2, 1})
    assert plaindata.plain_equal({float("nan"): 1, 2: 3.0}, {nan: 1, 2: 3.0000001}, 1e-3)
    assert plaindata.plain_equal({-0.0}, {0.0}) and plaindata.plain_equal(INF, INF, 1e-6)
    assert plaindata.plain_equal(complex(-INF, 1), complex(-INF, 1.0001), 1e-3)


def test_wrongly_typed_set_members_and_infinite_answers_score_zero(grader: FunctionGrader) -> None:
    cases = [{"args": [[1, 2, 2]], "expected": [{1, 2}, {1: 1, 2: 2}, INF]}]
    solution = "def f(xs):\n    c = {x: xs.count(x) for x in xs}\n    return [set(xs), c, float('inf')]\n"
    task = function_task(
        "sets",
        "Distinct items, their counts, and infinity.",
        entry_point="f",
        stub="def f(xs):\n    raise NotImplementedError\n",
        solution=solution,
        cases=cases,
        float_tol=1e-6,
    )
    good = grader.grade_files(task, task.solution["files"])
    assert good.resolved, good.log
    for wrong in (
        "[{True, 2}, {1: 1, 2: 2}, float('inf')]",
        "[{1, 2}, {True: 1, 2: 2}, float('inf')]",
        "[{1, 2}, {1: 1, 2: 2}, 1e300]",
        "[{1, 2}, {1: 1, 2: 2}, -float('inf')]",
    ):
        result = grader.grade_files(task, {"solution.py": f"def f(xs):\n    return {wrong}\n"})
        assert result.f2p_fraction == 0.0 and not result.integrity, (wrong, result.log)
        # the hidden pytest file embeds plain_equal's source and agrees
        hidden = task.verifier["hidden_tests"]["tests/test_function_cases.py"]
        ns: dict = {}
        exec(compile(hidden.replace("from solution import f", f"def f(xs):\n    return {wrong}\n"), "<h>", "exec"), ns)
        with pytest.raises(AssertionError):
            ns["test_case_0"]()


class _Sub(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [
        _Sub(1),
        [1, _Sub(2)],
        {"a": _Sub(3)},
        bytearray(b"x"),
        range(3),
        print,
        object(),
        iter([1]),
        (x for x in []),
        {1: {2: lambda: 0}},
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_plain_values_are_refused(value: object) -> None:
    with pytest.raises(plaindata.NotPlainError, match="not plain data"):
        plaindata.dumps(value)


def test_self_containing_values_are_refused() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(plaindata.NotPlainError, match="nested deeper"):
        plaindata.dumps(loop)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "[]",
        '["i", 12]',
        '["i", "0x1"]',
        '["i", "-"]',
        '["f", "nan", 1]',
        '["b", 1]',
        '["s"]',
        '["q", 1]',
        '["S", [["l", []]]]',
        '["d", [[["l", []], ["n"]]]]',
        '["d", [["n"]]]',
        '["y", "!!"]',
        "NaN",
        '["f", NaN]',
        "[" * 100_000 + "]" * 100_000,
        '["l", [' + ",".join(['["n"]'] * 10) + "]",
        '["f", "' + "1" * 100 + '"]',
        '["i", "' + "f" * (plaindata.MAX_INT_HEX + 1) + '"]',
        json.dumps(["l", [["l", []]] * 3])[:-3],
    ],
)
def test_malformed_documents_are_refused(text: str) -> None:
    with pytest.raises(plaindata.PlainDataError):
        plaindata.loads(text)


def test_deeply_nested_documents_are_refused() -> None:
    deep: list = ["n"]
    for _ in range(plaindata.MAX_DEPTH + 5):
        deep = ["l", [deep]]
    with pytest.raises(plaindata.PlainDataError, match="deeper"):
        plaindata.loads(json.dumps(deep))


# --- the environments use it ----------------------------------------------------------------


def test_humaneval_env_grades_outside_the_candidate(grader: FunctionGrader) -> None:
    from agentgym.envs.coding import HumanEvalEnv
    from agentgym.policies import ScriptedPolicy, make_policy
    from agentgym.rollout import run_episode

    env = HumanEvalEnv(split="all", sandbox=grader.provider.kind)
    try:
        assert run_episode(env, make_policy("oracle"), task_id="HumanEval/2").outcome_reward == 1.0
        cheat = (
            "```python\n"
            + textwrap.dedent(SUBCLASS)
            .replace("ENTRY", "truncate_number")
            .replace("BASE", "float")
            .replace("WRONG", "9.0")
            + "```"
        )
        traj = run_episode(env, ScriptedPolicy([cheat]), task_id="HumanEval/2")
        assert traj.outcome_reward == 0.0 and env.last_grade.integrity
    finally:
        env.close()


def test_every_humaneval_task_is_a_function_task() -> None:
    tasks = load_humaneval()
    assert all(is_function_task(t) for t in tasks)
    spec = tasks["HumanEval/32"].verifier["function"]
    assert "def poly(" in spec["prelude"] and "def check(candidate)" in spec["check"]
    assert tasks["HumanEval/32"].verifier["fail_to_pass"] == ["tests/test_check.py::test_check"]


def test_code_repair_on_humaneval_grades_outside_the_candidate(grader: FunctionGrader) -> None:
    """The multi-turn env reaches the same grader (Grader.grade dispatches function tasks)."""
    from coding_helpers import call

    from agentgym.envs.coding import CodeRepairEnv
    from agentgym.policies import ScriptedPolicy
    from agentgym.rollout import run_episode

    task = he("HumanEval/29")
    cheat = module_for(task, ALWAYS_EQUAL, "HumanEval/29")
    env = CodeRepairEnv(source="humaneval", sandbox=grader.provider.kind, split="all")
    try:
        for module, reward in ((cheat, 0.0), (task.solution["files"][SOLUTION], 1.0)):
            policy = ScriptedPolicy([call("write_file", path=SOLUTION, content=module), call("submit")])
            traj = run_episode(env, policy, task_id="HumanEval/29")
            assert traj.outcome_reward == reward, env.last_grade.summary()
        assert env.last_grade.fail_to_pass == {"tests/test_check.py::test_check": "passed"}
    finally:
        env.close()


@pytest.mark.parametrize(
    "stdout, exit_code, timed_out, why",
    [
        ("", 0, False, "found 0"),
        ("{n}{v}\n{n}{v}\n", 0, False, "found 2"),
        ("{n}not json\n", 0, False, "does not parse"),
        ("{n}{v}\n", -9, False, "exited with status -9"),
        ("{n}{v}\n", 0, True, "did not finish in time"),
        (
            '{n}{{"outcomes": {{"x": "passed"}}, "failures": [], "integrity": [], "timed_out": false}}\n',
            0,
            False,
            "malformed",
        ),
        (
            '{n}{{"outcomes": {{"t": "passed!"}}, "failures": [], "integrity": [], "timed_out": false}}\n',
            0,
            False,
            "malformed",
        ),
        ("@@agentgym-function-forged@@{v}\n", 0, False, "found 0"),
    ],
)
def test_verdicts_that_cannot_be_trusted_fail_closed(stdout: str, exit_code: int, timed_out: bool, why: str) -> None:
    from agentgym.envs.coding.grading import GradeResult
    from agentgym.sandboxes import ExecResult

    nonce = "@@agentgym-function-" + secrets.token_hex(16) + "@@"
    good = json.dumps({"outcomes": {"t": "passed"}, "failures": [], "integrity": [], "timed_out": False})
    res = ExecResult(exit_code, stdout.format(n=nonce, v=good), "", timed_out=timed_out)
    result = GradeResult({"t": "failed"}, {})
    FunctionGrader._verify(result, res, nonce, ["t"])
    assert not result.resolved and any(why in reason for reason in result.integrity), result.integrity
    trusted = GradeResult({"t": "failed"}, {})
    FunctionGrader._verify(trusted, ExecResult(0, f"{nonce}{good}\n", ""), nonce, ["t"])
    assert trusted.resolved  # the same verdict, on its own and with a clean exit, is accepted
