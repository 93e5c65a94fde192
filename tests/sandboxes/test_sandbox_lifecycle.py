"""No process, container or directory outlives its sandbox; pools hand out sandboxes fast."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sandbox_helpers import require_bwrap, require_docker

from agentgym.sandboxes import LocalSandbox, SandboxError, make_sandbox
from agentgym.sandboxes.local import HOST_UID_BASE
from agentgym.sandboxes.pool import SandboxPool


def _running_uids() -> set[int]:
    """Uids of live host processes.

    Zombies are left out: bwrap's namespace init can be orphaned for a moment at exit and is
    then the host init's to reap; it runs nothing.
    """
    uids = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        uids.add(os.stat(f"/proc/{name}").st_uid)
            except (OSError, IndexError):
                pass
    return uids


def _kill_mid_command(sb: object) -> None:
    """Close the sandbox from another thread while a command runs in it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sb.exec("sleep 1000 & sleep 1000", timeout=60)  # type: ignore[attr-defined]
        except SandboxError as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.05)
    sb.close()  # type: ignore[attr-defined]
    t.join(30)
    assert not t.is_alive() and errors, "the in-flight command must fail with SandboxError"


@pytest.mark.slow
def test_200_local_sandboxes_leave_nothing_behind() -> None:
    require_bwrap()
    uids, roots, pids = set(), [], []
    for i in range(200):
        sb = LocalSandbox()
        uids.add(sb.host_uid)
        roots.append(sb.host_dir)
        pids.append(sb.pid)
        sb.exec("sleep 1000 >/dev/null 2>&1 &")  # a background process must die with the sandbox
        if i % 10 == 0:
            _kill_mid_command(sb)
        elif i % 10 == 1:
            os.kill(sb.pid, 9)  # the sandbox dies under us; close() still cleans up
            sb.close()
        else:
            sb.close()
    if os.geteuid() == 0:
        assert all(u >= HOST_UID_BASE for u in uids)
        assert not uids & _running_uids(), "a sandbox process survived"
    for pid in pids:  # every bwrap we started is gone (or its pid now belongs to something else)
        assert not os.path.exists(f"/proc/{pid}") or "bwrap" not in Path(f"/proc/{pid}/cmdline").read_text()
    assert not any(r.exists() for r in roots)


@pytest.mark.docker
@pytest.mark.slow
def test_200_docker_sandboxes_leave_nothing_behind() -> None:
    require_docker()
    from agentgym.sandboxes.docker import DockerSandbox, docker_client

    client = docker_client()
    run_id = f"leaktest-{os.getpid()}"
    mounts: list[dict] = []

    def one(i: int) -> None:
        sb = DockerSandbox(run_id=run_id)
        info = client.api.inspect_container(sb.container_id)
        mounts.extend(info["Mounts"])  # the workspace is a tmpfs, not a volume that could leak
        assert sb.workdir in info["HostConfig"]["Tmpfs"]
        assert sb.exec("sleep 1000 >/dev/null 2>&1 &").ok
        if i % 10 == 0:
            _kill_mid_command(sb)
        else:
            sb.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(200)))
    left = client.api.containers(all=True, filters={"label": f"agentgym.run_id={run_id}"})
    assert left == []
    assert mounts == [], "containers must not mount volumes (they could outlive them)"


@pytest.mark.docker
def test_gc_reaps_containers_of_dead_runs() -> None:
    require_docker()
    from agentgym.sandboxes.docker import DockerSandbox, docker_client, gc

    client = docker_client()
    dead = DockerSandbox(labels={"agentgym.pid": "999999999"})
    live = DockerSandbox()
    try:
        removed = gc()
        assert dead.container_id in removed and live.container_id not in removed
        assert live.exec("true").ok
    finally:
        dead.close()  # already gone: close() tolerates that
        live.close()
    assert client.api.containers(all=True, filters={"id": live.container_id}) == []


def test_local_pool_acquire_is_fast(tmp_path: Path) -> None:
    require_bwrap()
    (tmp_path / "f.txt").write_text("task")
    with SandboxPool(LocalSandbox, size=2) as pool:
        pool.wait_ready(60)
        t0 = time.perf_counter()
        sb = pool.acquire()
        assert time.perf_counter() - t0 < 0.02
        assert sb.exec("true").ok
        pool.release(sb)
        sb2 = pool.acquire(files=tmp_path)
        sb2.write_file("f.txt", "changed")
        sb2.reset()
        assert sb2.read_file("f.txt") == b"task"
        sb2.close()


@pytest.mark.docker
def test_docker_pool_acquire_under_20ms() -> None:
    require_docker()
    from agentgym.sandboxes import DockerPool

    with DockerPool(size=2) as pool:
        pool.wait_ready(120)
        t0 = time.perf_counter()
        sb = pool.acquire()
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.02, elapsed
        assert sb.exec("echo ready").stdout == "ready\n"
        pool.release(sb)


def test_make_sandbox_and_errors() -> None:
    require_bwrap()
    with make_sandbox("local") as sb:
        assert isinstance(sb, LocalSandbox)
    with pytest.raises(ValueError, match="unknown sandbox kind"):
        make_sandbox("vm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="isolation"):
        LocalSandbox(isolation="weak")  # type: ignore[arg-type]


def test_isolation_none_is_explicit_and_works(tmp_path: Path) -> None:
    with LocalSandbox(isolation="none") as sb:
        assert sb.workdir == str(sb.host_workspace)
        assert sb.exec("pwd").stdout.strip() == sb.workdir


def test_import_does_not_pull_docker_or_torch() -> None:
    import subprocess
    import sys

    code = "import sys, agentgym.sandboxes; print('docker' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


@pytest.mark.docker
def test_containers_removed_on_sigterm_and_reaped_after_sigkill() -> None:
    require_docker()
    import signal
    import subprocess
    import sys

    from agentgym.sandboxes.docker import docker_client, gc

    client = docker_client()
    code = (
        "from agentgym.sandboxes import DockerSandbox\nimport time\nsb = DockerSandbox()\n"
        "print(sb.container_id, flush=True)\ntime.sleep(120)\n"
    )
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        cid = proc.stdout.readline().strip()
        proc.stdout.close()
        assert client.api.containers(filters={"id": cid}), "the child's container should be running"
        proc.send_signal(sig)
        assert proc.wait(30) == -sig
        if sig == signal.SIGKILL:  # no handler can run: the reaper finds the dead run
            assert client.api.containers(all=True, filters={"id": cid})
            assert cid in gc()
        assert client.api.containers(all=True, filters={"id": cid}) == []
