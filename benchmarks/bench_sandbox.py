"""Sandbox latency: exec, start (cold and from a warm pool) and reset, against baselines.

    python benchmarks/bench_sandbox.py [--n 300] [--no-docker] [--before 142967d]

Baselines in the same run: a bare ``subprocess.run(["true"])`` for LocalSandbox, and
the Docker SDK's ``exec_run`` (one ``docker exec`` per command) for DockerSandbox.
``--before REV`` also loads the sandbox package as it was at git revision ``REV``
(default: before the channel hardening of issue 8) and times its exec in the same
interleaved rounds, so "before" and "after" share the machine's load.
Targets: LocalSandbox exec p50 within 2x of bare subprocess; DockerSandbox exec p50
at least 10x faster than exec_run; warm-pool acquire under 20 ms.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from agentgym.sandboxes import LocalSandbox, Sandbox
from agentgym.sandboxes.pool import SandboxPool


def timings(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def acquire_row(what: str, pool: Any, n: int, ready_timeout: float) -> tuple[str, str, float, float, str]:
    """A ``start`` row: p50/p99 of ``pool.acquire()`` with the pool refilled (``wait_ready``) before each."""
    acq = []
    for _ in range(n):
        pool.wait_ready(ready_timeout)
        t0 = time.perf_counter()
        sb = pool.acquire()
        acq.append(time.perf_counter() - t0)
        pool.release(sb)
    p99 = pct(acq, 0.99)
    return ("start", what, pct(acq, 0.5), p99, f"target < 20 ms {'OK' if p99 < 20 else 'MISSED'}")


def interleaved(fns: dict[str, Callable[[], object]], n: int, rounds: int = 10) -> dict[str, list[float]]:
    """Alternate between the contenders in rounds so machine load hits them alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            out[name] += timings(fn, max(1, n // rounds))
    return out


def load_before(rev: str, into: str) -> ModuleType:
    """The ``sandboxes`` package at git revision ``rev``, importable as ``sandboxes_<rev>``."""
    repo = Path(__file__).resolve().parents[1]
    name = f"sandboxes_{rev}"
    pkg = Path(into) / name
    pkg.mkdir()
    # The package lives at agentgym/sandboxes/ (it was a top-level sandboxes/ before the layout move).
    folder = next(
        f
        for f in ("agentgym/sandboxes", "sandboxes")
        if subprocess.run(
            ["git", "-C", str(repo), "cat-file", "-e", f"{rev}:{f}"], capture_output=True, check=False
        ).returncode
        == 0
    )
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "--name-only", f"{rev}:{folder}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for f in files:
        if f.endswith(".py"):
            src = subprocess.run(
                ["git", "-C", str(repo), "show", f"{rev}:{folder}/{f}"], check=True, capture_output=True
            ).stdout
            (pkg / f).write_bytes(src)
    sys.path.insert(0, into)
    return importlib.import_module(name)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def make_tree(root: Path, files: int = 1000) -> None:
    for i in range(files):
        d = root / f"pkg{i % 20}"
        d.mkdir(exist_ok=True)
        (d / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 20)


def dirty(sb: Sandbox) -> None:
    """Modify 10 files, delete 10, create 10 (a typical episode's footprint)."""
    sb.exec("for i in 0 1 2 3 4 5 6 7 8 9; do echo x >> pkg$i/mod$i.py; rm pkg1$i/mod1$i.py; echo new > new$i.py; done")


def reset_times(sb: Sandbox, n: int, tree: str) -> tuple[list[float], list[float], list[float]]:
    clean = timings(sb.reset, n)
    changed, full = [], []
    for _ in range(n):
        dirty(sb)
        t0 = time.perf_counter()
        sb.reset()
        changed.append(time.perf_counter() - t0)
    assert sb.exec("test ! -e new0.py && test -e pkg10/mod10.py").ok, "reset did not restore the tree"
    for _ in range(n):  # the naive alternative: wipe the workspace and copy everything back
        dirty(sb)
        t0 = time.perf_counter()
        sb.exec(f"find {sb.workdir} -mindepth 1 -delete")
        sb.upload(tree)
        full.append(time.perf_counter() - t0)
    return clean, changed, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="exec samples per contender")
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--before", default="142967d", help="git revision to compare exec with ('' to skip)")
    args = parser.parse_args()
    rows: list[tuple[str, str, float, float, str]] = []  # (group, what, p50 ms, p99 ms, note)

    before_dir = tempfile.TemporaryDirectory()
    old: Any = load_before(args.before, before_dir.name) if args.before else None
    local = LocalSandbox()
    old_local = old.LocalSandbox() if old is not None else None
    fns: dict[str, Callable[[], object]] = {
        "bare subprocess.run(['true'])": lambda: subprocess.run(["true"], check=True),
        "LocalSandbox.exec(['true'])": lambda: local.exec(["true"]),
    }
    if old_local is not None:
        fns[f"LocalSandbox.exec(['true']) before ({args.before})"] = lambda: old_local.exec(["true"])
    docker_sb = container = old_docker = None
    if not args.no_docker:
        from agentgym.sandboxes import DockerSandbox
        from agentgym.sandboxes.docker import docker_client

        docker_sb = DockerSandbox()
        container = docker_client().containers.get(docker_sb.container_id)
        fns["DockerSandbox.exec(['true'])"] = lambda: docker_sb.exec(["true"])
        if old is not None:
            old_docker = importlib.import_module(old.__name__ + ".docker").DockerSandbox()
            fns[f"DockerSandbox.exec(['true']) before ({args.before})"] = lambda: old_docker.exec(["true"])
    res = interleaved(fns, args.n)
    if container is not None:
        res["docker SDK exec_run('true')"] = timings(lambda: container.exec_run(["true"]), max(20, args.n // 6))
    bare = statistics.median(res["bare subprocess.run(['true'])"])
    for name, xs in res.items():
        note = ""
        if name.startswith("LocalSandbox"):
            ratio = statistics.median(xs) / bare
            note = f"{ratio:.2f}x bare (target <= 2x) {'OK' if ratio <= 2 else 'MISSED'}"
        if " before (" in name:
            now = statistics.median(res[name.split(" before (")[0]])
            note = (
                note + "; " if name.startswith("LocalSandbox") else ""
            ) + f"after/before = {now / statistics.median(xs):.2f}"
        elif name.startswith("DockerSandbox") and "docker SDK exec_run('true')" in res:
            ratio = statistics.median(res["docker SDK exec_run('true')"]) / statistics.median(xs)
            note = f"{ratio:.0f}x faster than exec_run (target >= 10x) {'OK' if ratio >= 10 else 'MISSED'}"
        rows.append(("exec", name, pct(xs, 0.5), pct(xs, 0.99), note))

    rows.append(
        (
            "start",
            "LocalSandbox() cold",
            *(lambda t: (pct(t, 0.5), pct(t, 0.99)))(timings(lambda: LocalSandbox().close(), 20)),
            "includes close",
        )
    )
    if old is not None:
        rows.append(
            (
                "start",
                f"LocalSandbox() cold before ({args.before})",
                *(lambda t: (pct(t, 0.5), pct(t, 0.99)))(timings(lambda: old.LocalSandbox().close(), 20)),
                "includes close",
            )
        )
    with SandboxPool(LocalSandbox, size=3) as pool:
        rows.append(acquire_row("SandboxPool(LocalSandbox).acquire()", pool, 10, ready_timeout=60))
    if docker_sb is not None:
        from agentgym.sandboxes import DockerPool, DockerSandbox

        cold = timings(lambda: DockerSandbox().close(), 8)
        rows.append(("start", "DockerSandbox() cold", pct(cold, 0.5), pct(cold, 0.99), "includes close (remove)"))
        with DockerPool(size=2) as dpool:
            rows.append(acquire_row("DockerPool.acquire()", dpool, 8, ready_timeout=120))

    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp))
        backends: list[tuple[str, Callable[[], Sandbox]]] = [("LocalSandbox", lambda: LocalSandbox(files=tmp))]
        if docker_sb is not None:
            from agentgym.sandboxes import DockerSandbox

            backends.append(("DockerSandbox", lambda: DockerSandbox(files=tmp)))
        for name, factory in backends:
            with factory() as sb:
                clean, changed, full = reset_times(sb, 10, tmp)
                rows.append(("reset", f"{name}.reset() 1,000 files, unchanged", pct(clean, 0.5), pct(clean, 0.99), ""))
                rows.append(
                    (
                        "reset",
                        f"{name}.reset() 1,000 files, 30 changed",
                        pct(changed, 0.5),
                        pct(changed, 0.99),
                        "modify 10, delete 10, create 10",
                    )
                )
                rows.append(
                    (
                        "reset",
                        f"{name} full copy (wipe + upload), baseline",
                        pct(full, 0.5),
                        pct(full, 0.99),
                        f"reset is {statistics.median(full) / statistics.median(changed):.1f}x faster",
                    )
                )
    local.close()
    for sb in (docker_sb, old_local, old_docker):
        if sb is not None:
            sb.close()
    before_dir.cleanup()
    _print(rows)


def _print(rows: list[tuple[str, str, float, float, str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for group, what, p50, p99, note in rows:
            print(f"{group:6} {what:50} p50 {p50:9.2f} ms  p99 {p99:9.2f} ms  {note}")
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        return
    load = os.getloadavg()[0]
    table = Table(
        title="agentgym sandbox latency",
        caption=f"{os.cpu_count()} CPUs, load average {load:.1f} while measuring (ratios are interleaved)",
    )
    for col, kw in (
        ("", {}),
        ("what", {}),
        ("p50 ms", {"justify": "right"}),
        ("p99 ms", {"justify": "right"}),
        ("note", {}),
    ):
        table.add_column(col, **kw)
    for group, what, p50, p99, note in rows:
        table.add_row(group, what, f"{p50:.2f}", f"{p99:.2f}", note)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
