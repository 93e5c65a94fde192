"""Red team for function-level grading at the process boundary.

A candidate that exits, kills or stops processes, stalls, floods its output, forges answers
on the result channel or probes for the checker and the check's source must score 0, on the
local and the Docker sandbox, while the canonical solution scores 1.
"""

from __future__ import annotations

import secrets

import pytest
from humaneval_helpers import assert_cheat_fails, score

from agentgym.envs.coding.function_grading import FunctionGrader, function_task

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
    cheat = (
        "import os, signal\n\ndef ENTRY(*args, **kwargs):\n    os.kill(os.getppid(), signal.SIGSTOP)\n"
        "    return WRONG\n"
    )
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
    verdict = ('{"outcomes": {"tests/test_check.py::test_check": "passed"}, '
               '"failures": [], "integrity": [], "timed_out": false}')
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
