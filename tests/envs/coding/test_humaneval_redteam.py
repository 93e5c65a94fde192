"""Red team for function-level grading on HumanEval: cheats on the values, the stack and the check.

Every cheat is a wrong solution that tries to win the reward one way; each must score 0
under :class:`FunctionGrader` while the canonical solution scores 1 in the same test, on the
local and the Docker sandbox. Where a cheat does win a naive in-process harness (prompt +
completion + check in one interpreter, pass = exit status 0, the way the hidden test used to
run), the test shows that too, so the cheat is known to be a real one.

Cheats at the process boundary (exits, kills, floods, reaching the checker) are in
``test_humaneval_process.py``, the plain-data codec in ``test_plaindata.py``, io-case tasks
and the checker's verdicts in ``test_function_grading.py``.
"""

from __future__ import annotations

import textwrap

import pytest
from humaneval_helpers import ALL, assert_cheat_fails, he, module_for

from agentgym.envs.coding.function_grading import FunctionGrader, is_function_task
from agentgym.envs.coding.humaneval import SOLUTION, load_humaneval

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
