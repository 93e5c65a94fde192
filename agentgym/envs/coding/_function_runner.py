"""Sandbox side of function-level grading: the trusted checker and the candidate child.

Never imported by agentgym: :mod:`agentgym.envs.coding.function_grading` sends the source of
:mod:`~agentgym.envs.coding.plaindata` followed by this file's source as ``python3 -I -B -c``
programs, ending in ``checker_main()`` (the checker) or ``child_main()`` (the child). Only the
standard library is used.

Checker (trusted; never imports or runs the candidate's code):

1. makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so processes of the same uid
   cannot ptrace it, ``pidfd_getfd`` its descriptors or read ``/proc/<pid>/{mem,fd,environ}``;
2. reads its whole configuration (nonce, prelude, check source or io cases) from stdin, then
   points stdin and stdout at ``/dev/null``, keeping a private duplicate of stdout for the verdict;
3. keeps only existing, non-writable directories on ``sys.path``, so nothing the candidate
   writes can be imported by the check later;
4. runs the prelude and the check's definitions, *then* starts the candidate child over two
   pipes of its own (``close_fds``, new session, stderr to ``/dev/null``);
5. calls the check with a proxy: each call sends the (trusted) arguments to the child and
   rebuilds the answer with :func:`plaindata.from_tagged`; an ordinary exception in the candidate
   is raised again as the builtin exception of the same class (or ``CandidateError``), anything
   else (non-plain data, exit, death, timeout, oversized or garbled answer) stops the candidate
   and fails the check whatever the check does next;
6. writes one nonce-tagged JSON verdict to the saved stdout and leaves with ``os._exit(0)``.
   Any catchable signal it receives fails the verdict.

Child (untrusted): moves the pipes to private descriptors, points 0/1/2 at ``/dev/null``,
imports the module, and answers ``init``/``call`` requests with tagged plain data.
"""

if __name__ != "__main__":  # pragma: no cover - only for readers and linters; in the sandbox the codec precedes
    from typing import Any  # local annotations only: never evaluated, so the sandbox needs no typing

    from agentgym.envs.coding.plaindata import (
        NotPlainError,
        PlainDataError,
        describe_type,
        from_tagged,
        plain_equal,
        to_tagged,
    )


def checker_main():
    import builtins
    import ctypes
    import json
    import os
    import select
    import signal
    import subprocess
    import sys
    import time

    start = time.monotonic()
    out_fd = os.dup(1)
    libc = ctypes.CDLL(None, use_errno=True)
    hidden = libc.prctl(4, 0, 0, 0, 0) == 0 and libc.prctl(3, 0, 0, 0, 0) == 0  # PR_SET/GET_DUMPABLE
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    cfg = json.loads(b"".join(chunks))
    del chunks
    nonce = cfg.pop("nonce")

    def finish(verdict):
        data = ("\n" + nonce + json.dumps(verdict) + "\n").encode()
        while data:
            data = data[os.write(out_fd, data) :]
        os._exit(0)

    if not hidden:
        finish({"infra": "prctl(PR_SET_DUMPABLE, 0) failed: the checker cannot hide its memory from the candidate"})
    nul = os.open(os.devnull, os.O_RDWR)
    os.dup2(nul, 0)
    os.dup2(nul, 1)
    # (a checker running as root shares everything with the candidate anyway: then only relative entries go)
    sys.path[:] = [
        p
        for p in sys.path
        if os.path.isabs(p) and os.path.isdir(p) and (os.geteuid() == 0 or not os.access(p, os.W_OK))
    ]
    workdir = os.getcwd()
    total_deadline = start + float(cfg["timeout"])
    call_timeout = float(cfg["call_timeout"])
    max_bytes = int(cfg["max_result_bytes"])
    nodeids = cfg["nodeids"]
    entry = cfg["entry_point"]

    class State:  # (class annotations are evaluated at run time, so they are quoted)
        stop: "str | None" = None  # why the candidate was stopped; the verdict fails once set
        timed_out = False
        calls = 0
        child: "subprocess.Popen[bytes] | None" = None

    failures: list[str] = []
    integrity: list[str] = []

    class Stop(BaseException):
        """The candidate is out: raised into the check, not catchable by ``except Exception``."""

    class CandidateError(Exception):
        """A candidate exception whose class has no builtin counterpart to raise."""

    def on_signal(signum, frame):
        integrity.append(f"the checker received signal {signum} while grading (sent by the candidate's processes)")
        State.stop = State.stop or f"signal {signum}"

    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGWINCH, signal.SIGURG):
            continue
        try:
            signal.signal(sig, on_signal)
        except (OSError, ValueError):
            pass

    ns: dict[str, Any] = {"__name__": "__check__", "__builtins__": builtins}
    try:
        if cfg.get("prelude"):
            exec(compile(cfg["prelude"], "<prelude>", "exec"), ns)
        if cfg["mode"] == "check":
            exec(compile(cfg["check"], "<check>", "exec"), ns)
            check_fn = ns["check"]
        else:
            cases = [
                (from_tagged(c["args"]), from_tagged(c["kwargs"]), from_tagged(c["expected"])) for c in cfg["cases"]
            ]
    except BaseException as e:
        finish({"task_error": f"the task's prelude or check does not run: {type(e).__name__}: {str(e)[:300]}"})

    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    State.child = child = subprocess.Popen(
        [sys.executable, "-I", "-B", "-c", cfg["child"]],
        stdin=req_r,
        stdout=resp_w,
        stderr=nul,
        close_fds=True,
        start_new_session=True,
        cwd=workdir,
    )
    os.close(req_r)
    os.close(resp_w)
    os.set_blocking(req_w, False)
    os.set_blocking(resp_r, False)
    buf = bytearray()

    def kill_child():
        child = State.child
        if child is not None:
            for kill in (lambda: os.killpg(child.pid, signal.SIGKILL), child.kill):
                try:
                    kill()
                except OSError:
                    pass
            try:
                child.wait(timeout=2)
            except Exception:
                pass

    def stop(why, *, flag=False, timed_out=False):
        if State.stop is None:
            State.stop = why
            (integrity if flag else failures).append(why)
        State.timed_out = State.timed_out or timed_out
        kill_child()
        raise Stop(why)

    def exit_reason():
        try:
            code = child.wait(timeout=1)
        except Exception:
            return "stopped answering"
        return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"

    def exchange(request, seq):
        limit = min(call_timeout, total_deadline - time.monotonic())
        deadline = time.monotonic() + max(limit, 0.0)
        data = (json.dumps(request) + "\n").encode()
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [req_w], [], left)[1]:
                stop(f"the candidate did not take its input within {limit:.1f}s", timed_out=True)
            try:
                data = data[os.write(req_w, data) :]
            except BlockingIOError:
                continue
            except OSError:
                stop(f"the candidate's process {exit_reason()} (call {seq})", flag=True)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([resp_r], [], [], left)[0]:
                stop(f"call {seq} took longer than {limit:.1f}s", timed_out=True)
            try:
                chunk = os.read(resp_r, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                why = exit_reason()  # waits for the exit status; a voluntary exit or a closed channel is flagged
                stop(
                    f"the candidate's process {why} (call {seq})",
                    flag=child.returncode is None or child.returncode >= 0,
                )
            buf.extend(chunk)
            if len(buf) > max_bytes:
                stop(f"call {seq} answered with more than {max_bytes} bytes")
        i = buf.index(b"\n")
        line = bytes(buf[:i])
        del buf[: i + 1]
        if buf:
            stop(f"the candidate wrote unrequested data on its result channel (call {seq})", flag=True)
        try:
            msg = json.loads(line)
            ok = type(msg) is list and len(msg) >= 2 and msg[0] == seq and type(msg[1]) is str
        except (ValueError, RecursionError):
            ok = False
        if not ok:
            stop(f"the candidate's answer to call {seq} is not a protocol message", flag=True)
        return msg

    mappable = {}
    for name in (
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "BufferError",
        "EOFError",
        "FloatingPointError",
        "ImportError",
        "IndexError",
        "KeyError",
        "LookupError",
        "MemoryError",
        "ModuleNotFoundError",
        "NameError",
        "NotImplementedError",
        "OSError",
        "OverflowError",
        "RecursionError",
        "ReferenceError",
        "RuntimeError",
        "TypeError",
        "UnboundLocalError",
        "UnicodeError",
        "ValueError",
        "ZeroDivisionError",
    ):
        mappable[name] = getattr(builtins, name)

    def answer(msg, seq, what):
        kind = msg[1]
        try:
            if kind == "ok" and len(msg) == 3:
                return from_tagged(msg[2])
            if (
                kind == "raise"
                and len(msg) == 4
                and type(msg[2]) is list
                and type(msg[3]) is str
                and 0 < len(msg[2]) <= 64
                and all(type(n) is str and len(n) <= 100 for n in msg[2])
            ):
                text = msg[3][:1000]
                for name in msg[2]:
                    if name in mappable:
                        try:
                            error = mappable[name](text)
                        except Exception:
                            continue
                        raise error
                raise CandidateError(f"{msg[2][0]}: {text}")
            if kind == "notplain" and len(msg) == 4 and type(msg[2]) is str:
                stop(
                    f"{what} returned {msg[2][:200]}, which is not plain data"
                    + (" (a class that can fake comparisons)" if msg[3] is True else ""),
                    flag=msg[3] is True,
                )
            if kind == "exit" and len(msg) == 3 and type(msg[2]) is str:
                stop(f"{what} tried to end its process ({msg[2][:100]})", flag=True)
        except PlainDataError as e:
            stop(f"{what} sent a malformed value: {e}", flag=True)
        stop(f"{what} sent an unknown answer", flag=True)

    class Candidate:
        """Stands for the candidate function in the check; every call runs in the child."""

        __name__ = __qualname__ = entry

        def __call__(self, *args, **kwargs):
            if State.stop is not None:
                raise Stop(State.stop)
            try:
                request_args = [to_tagged(args), to_tagged(kwargs)]
            except NotPlainError as e:
                stop(f"the check passed an argument that is not plain data ({e}); fix the task")
            State.calls += 1
            seq = State.calls
            return answer(exchange([seq, "call", *request_args], seq), seq, f"call {seq}")

        def __repr__(self):
            return f"<candidate {entry}>"

    candidate = Candidate()
    outcomes = dict.fromkeys(nodeids, "failed")
    try:
        answer(exchange([0, "init", cfg["module"], entry], 0), 0, "importing the module")
    except Stop:
        pass
    except BaseException as e:
        failures.append(f"importing the module or finding {entry} failed: {type(e).__name__}: {str(e)[:300]}")
        State.stop = State.stop or "import failed"
    if State.stop is None:
        ns[entry] = candidate
        if cfg["mode"] == "check":
            try:
                check_fn(candidate)
                passed = True
            except BaseException as e:
                passed = False
                if not isinstance(e, Stop):
                    failures.append(f"{nodeids[0]}: {type(e).__name__}: {str(e)[:300]}")
            outcomes[nodeids[0]] = "passed" if passed and State.stop is None else "failed"
        else:
            for nodeid, (args, kwargs, expected) in zip(nodeids, cases, strict=True):
                if State.stop is not None:  # set by the calls below: mypy keeps the narrowing from above
                    break  # type: ignore[unreachable]
                try:
                    got = candidate(*args, **kwargs)
                    passed = plain_equal(got, expected, float(cfg.get("float_tol", 0.0)))
                    if not passed:
                        failures.append(f"{nodeid}: wrong result")
                except BaseException as e:
                    passed = False
                    if not isinstance(e, Stop):
                        failures.append(f"{nodeid}: {type(e).__name__}: {str(e)[:300]}")
                outcomes[nodeid] = "passed" if passed and State.stop is None else "failed"
    if State.stop is not None:
        outcomes = dict.fromkeys(nodeids, "failed")
    kill_child()
    finish(
        {
            "outcomes": outcomes,
            "failures": failures[:20],
            "integrity": integrity[:20],
            "timed_out": State.timed_out,
            "calls": State.calls,
            "seconds": round(time.monotonic() - start, 3),
        }
    )


def child_main():
    import os

    rfd, wfd = os.dup(0), os.dup(1)
    nul = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(nul, fd)
    os.close(nul)
    import importlib
    import json
    import sys

    reader = os.fdopen(rfd, "rb")
    plain = (int, float, complex, str, bytes, list, tuple, dict, set, frozenset)

    def reply(obj):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(wfd, data) :]

    def error_reply(seq, e):
        t = type(e)
        if isinstance(e, (SystemExit, KeyboardInterrupt, GeneratorExit)):
            return [seq, "exit", describe_type(t)]
        try:
            names = [c.__name__ for c in t.__mro__ if c.__module__ == "builtins"][:64] or ["Exception"]
            if t.__module__ != "builtins":
                names.insert(0, describe_type(t))
            text = str(e)[:1000]
        except BaseException:
            names, text = ["Exception"], "(an exception whose details could not be read)"
        return [seq, "raise", [str(n)[:100] for n in names], str(text)]

    def suspicious(t, module):
        try:
            return issubclass(t, plain) or type.__getattribute__(t, "__module__") in (module, "__main__")
        except BaseException:
            return True

    init = json.loads(reader.readline())
    _, _, path, entry = init
    module = path[:-3].replace("/", ".") if path.endswith(".py") else path
    sys.path.insert(0, os.getcwd())
    try:
        fn = getattr(importlib.import_module(module), entry)
        if not callable(fn):
            raise TypeError(f"{entry} is not a function")
    except BaseException as e:
        reply(error_reply(0, e))
        os._exit(0)
    reply([0, "ok", ["n"]])
    while True:
        line = reader.readline()
        if not line:
            os._exit(0)
        seq, _, args, kwargs = json.loads(line)
        try:
            result = fn(*from_tagged(args), **from_tagged(kwargs))
        except BaseException as e:
            reply(error_reply(seq, e))
            continue
        try:
            reply([seq, "ok", to_tagged(result)])
        except BaseException:
            reply([seq, "notplain", describe_type(type(result)), suspicious(type(result), module)])
