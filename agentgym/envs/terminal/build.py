"""The starting state of a Harbor task: the image its packages need, and the file steps replayed in the sandbox.

:func:`agentgym.harbor.plan_dockerfile` splits a task's Dockerfile into package installs and
file steps. Packages need an image layer: for the Docker backend :func:`task_image` builds
``agentgym/harbor-<hash>`` from the base image once (apt from the machine's Debian mirror, pip
from the package index; cached by the package list); the local backend runs on the host's
``/usr``, so there :func:`missing_host_packages` says which apt packages the host lacks.
:func:`replay` then builds the workspace inside a started sandbox, as the agent's user.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any

from agentgym.harbor import BASE_IMAGE, entry_bytes
from agentgym.sandboxes import Sandbox, SandboxError
from agentgym.tasks import Task

_BUILD_LOCK = threading.Lock()
_HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def missing_host_packages(packages: list[str]) -> list[str]:
    """The Debian packages of ``packages`` that are not installed on this host (``dpkg-query``)."""
    missing = []
    for name in packages:
        pkg = name.split("=")[0]
        try:
            out = subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            missing.append(pkg)
            continue
        if "install ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


def image_tag(task: Task) -> str:
    """The Docker image a task runs on: the base image, or ``agentgym/harbor-<hash of its packages>``."""
    apt, pip = task.setup.get("apt", []), task.setup.get("pip", [])
    if not apt and not pip:
        return BASE_IMAGE
    key = hashlib.sha256(f"{BASE_IMAGE}\napt:{sorted(apt)}\npip:{sorted(pip)}".encode()).hexdigest()[:16]
    return f"agentgym/harbor-{key}"


def task_image(task: Task, client: Any = None) -> str:
    """Build (once) and return the image with the task's apt and pip packages on the base image.

    Raises:
        SandboxError: the build failed (the message has the tail of the build log).
    """
    tag = image_tag(task)
    if tag == BASE_IMAGE:
        return tag
    from agentgym.sandboxes.docker import docker_client

    client = client or docker_client()
    with _BUILD_LOCK:
        try:
            client.images.get(tag)
            return tag
        except Exception:
            pass
        apt, pip = list(task.setup.get("apt", [])), list(task.setup.get("pip", []))
        lines = [f"FROM {BASE_IMAGE}", "USER root"]
        if pip:
            apt = [*apt, "python3-pip"]
        lines.append(
            "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
            + " ".join(shlex.quote(p) for p in dict.fromkeys(apt))
            + " && rm -rf /var/lib/apt/lists/*"
        )
        with tempfile.TemporaryDirectory(prefix="agentgym-harbor-build-") as ctx:
            if pip:
                if _HOST_CA.is_file():  # a proxy's certificate the host trusts, for the package index
                    shutil.copy(_HOST_CA, Path(ctx) / "ca.crt")
                    lines.append("COPY ca.crt /tmp/agentgym-ca.crt")
                    cert = "--cert /tmp/agentgym-ca.crt "
                else:
                    cert = ""
                names = " ".join(shlex.quote(p) for p in pip if not p.startswith("-"))
                lines.append(f"RUN python3 -m pip install --no-cache-dir --break-system-packages {cert}{names}")
            lines.append("USER 1000:1000")
            (Path(ctx) / "Dockerfile").write_text("\n".join(lines) + "\n")
            log: list[str] = []
            try:
                for chunk in client.api.build(path=ctx, tag=tag, rm=True, forcerm=True, decode=True):
                    if "stream" in chunk:
                        log.append(str(chunk["stream"]))
                    if "error" in chunk:
                        raise SandboxError(f"building {tag} failed: {chunk['error']}\n{''.join(log)[-2000:]}")
            except SandboxError:
                raise
            except Exception as e:
                raise SandboxError(f"building {tag} failed: {e}\n{''.join(log)[-2000:]}") from e
    return tag


def _copy_sources(context: dict[str, dict[str, Any]], src: str) -> list[tuple[str, dict[str, Any]]]:
    """``(path relative to the destination, entry)`` for a COPY source (a file, a folder or a glob)."""
    from fnmatch import fnmatch

    src = src.strip("/").removeprefix("./")
    if src in ("", "."):
        return sorted(context.items())
    if src in context:
        return [(Path(src).name, context[src])]
    prefix = src.rstrip("/") + "/"
    inside = [(k[len(prefix) :], v) for k, v in sorted(context.items()) if k.startswith(prefix)]
    if inside:
        return inside
    return [(Path(k).name, v) for k, v in sorted(context.items()) if fnmatch(k, src)]


def replay(sandbox: Sandbox, task: Task, timeout: float = 300.0) -> dict[str, str]:
    """Build the task's starting state in ``sandbox`` (as its user, cwd the workdir); returns the final ENV.

    Raises:
        SandboxError: a step failed (the task is broken on this backend: the message names the step).
    """
    setup = task.setup
    workdir: str = setup["workdir"]
    context: dict[str, dict[str, Any]] = setup.get("context", {})
    env: dict[str, str] = {}
    for i, step in enumerate(setup.get("steps", []), 1):
        if "env" in step:
            env.update(step["env"])
        elif "copy" in step:
            dest: str = step["dest"]
            files = [pair for src in step["copy"] for pair in _copy_sources(context, src)]
            single = len(step["copy"]) == 1 and len(files) == 1 and not dest.endswith("/")
            single = single and step["copy"][0].strip("/") in context
            if single and (dest == workdir or sandbox.exec(["test", "-d", dest], timeout=30).ok):
                single = False  # COPY file /existing/dir: into the directory, as Docker does
            with tempfile.TemporaryDirectory(prefix="agentgym-copy-") as tmp:
                for rel, entry in files:
                    target = Path(tmp) / (Path(dest).name if single else rel)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    data = entry_bytes(entry)
                    if step.get("extract") and rel.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
                        archive = Path(tmp) / f".archive-{i}"
                        archive.write_bytes(data)
                        with tarfile.open(archive) as tar:
                            tar.extractall(Path(tmp), filter="data")
                        archive.unlink()
                        continue
                    target.write_bytes(data)
                    target.chmod(int(entry.get("mode", 0o644)))
                target_dir = str(Path(dest).parent) if single else dest
                sandbox.exec(["mkdir", "-p", target_dir], timeout=30)
                sandbox.upload(tmp, target_dir)
        elif "run" in step:
            result = sandbox.exec(["/bin/bash", "-c", step["run"]], cwd=workdir, env=env, timeout=timeout)
            if not result.ok:
                raise SandboxError(
                    f"task {task.id}: Dockerfile step {i} (RUN {step['run'][:200]}) failed with exit code "
                    f"{result.exit_code}{' (timed out)' if result.timed_out else ''}: {result.output[-1500:]}"
                )
    if setup.get("cmd"):
        # The task's service: detached, its own session, nothing of it tied to the helper's pipes.
        sandbox.exec(
            ["/bin/bash", "-c", f"setsid /bin/bash -c {shlex.quote(setup['cmd'])} </dev/null >/dev/null 2>&1 &"],
            cwd=workdir,
            env=env,
            timeout=30,
        )
    return env
