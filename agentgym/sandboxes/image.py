"""Build the sandbox base image without a registry.

The image is Debian bookworm (``debootstrap --variant=minbase``) with the
packages in :data:`PACKAGES` (python3, python3-pytest, git and the command-line
tools shell tasks expect), a non-root user ``agent`` (uid 1000) and an empty
``/workspace``, imported into the local Docker engine with ``docker import``.
The Debian mirror is read from the machine's apt sources, never hard-coded.
The package list is recorded in the image's ``agentgym.packages`` label, so an
image built from an older list is rebuilt (not skipped) when the list changes.

Run as a module: ``python -m agentgym.sandboxes.image [--name N] [--force]``.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import SandboxError

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "agentgym/base:bookworm"
PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-pytest",
    "git",
    # what shell (Terminal) tasks take for granted; scripts/setup-system.sh installs the same on the host
    "jq",
    "zip",
    "unzip",
    "file",
    "bc",
    "procps",
    "xz-utils",
    "bzip2",
    "sqlite3",
    "make",
    "patch",
)
"""Debian packages installed into the base image (on top of ``minbase``)."""
PACKAGES_LABEL = "agentgym.packages"
"""Image label holding the package list the image was built from (see :func:`packages_label`)."""
AGENT_UID = 1000
AGENT_USER = "agent"


def apt_mirror(suite: str = "bookworm") -> str:
    """The Debian mirror URI serving ``suite``, read from the machine's apt sources."""
    candidates: list[tuple[str, list[str]]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and "uris" in fields:
                candidates.append((fields["uris"].split()[0], fields.get("suites", "").split()))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if os.path.exists(path):
            for line in Path(path).read_text().splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    candidates.append((m.group(1), [m.group(2)]))
    for uri, suites in candidates:
        if suite in suites:
            return uri.rstrip("/")
    raise SandboxError(
        f"no apt source for suite {suite!r} in /etc/apt/sources.list(.d); add a Debian "
        f"mirror there (e.g. a deb822 stanza with 'URIs:' and 'Suites: {suite}')"
    )


def _docker_client() -> Any:
    from .docker import docker_client

    return docker_client()


def image_exists(name: str, client: Any = None) -> bool:
    """Whether ``name`` is present in the local engine."""
    import docker.errors  # type: ignore[import-untyped]  # no stubs installed (types-docker)

    client = client or _docker_client()
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def packages_label(packages: Sequence[str]) -> str:
    """The :data:`PACKAGES_LABEL` value for ``packages``: sorted, deduplicated, comma-separated."""
    return ",".join(sorted(set(packages)))


def image_packages(name: str, client: Any = None) -> str | None:
    """The :data:`PACKAGES_LABEL` of the local image ``name``; None when it has none or is missing."""
    import docker.errors

    client = client or _docker_client()
    try:
        labels = client.images.get(name).labels or {}
    except docker.errors.ImageNotFound:
        return None
    value = labels.get(PACKAGES_LABEL)
    return value if isinstance(value, str) else None


def _customize(root: Path) -> None:
    """Add the non-root user, the workspace, a ``python`` command; drop caches."""
    with open(root / "etc/passwd", "a") as f:
        f.write(f"{AGENT_USER}:x:{AGENT_UID}:{AGENT_UID}::/home/{AGENT_USER}:/bin/bash\n")
    with open(root / "etc/group", "a") as f:
        f.write(f"{AGENT_USER}:x:{AGENT_UID}:\n")
    with open(root / "etc/shadow", "a") as f:
        f.write(f"{AGENT_USER}:!:19000:0:99999:7:::\n")
    for d in (f"home/{AGENT_USER}", "workspace"):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chown(root / d, AGENT_UID, AGENT_UID)
    python = root / "usr/local/bin/python"
    if not python.exists():
        python.symlink_to("/usr/bin/python3")
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*_*",
        "usr/share/doc/*",
        "usr/share/man/*",
        "usr/share/locale/*",
    ):
        for p in glob.glob(str(root / pattern)):
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def build_image(
    name: str = DEFAULT_IMAGE,
    force: bool = False,
    packages: Sequence[str] = PACKAGES,
    suite: str = "bookworm",
    mirror: str | None = None,
) -> str:
    """Build ``name`` with debootstrap + ``docker import``, unless it is up to date.

    An existing image is kept when its :data:`PACKAGES_LABEL` label matches ``packages``;
    one built from another package list (or before the label existed) is rebuilt, and the
    log says why. The old image's tag moves to the new build.

    Args:
        name: Image ``repository:tag``.
        force: Rebuild even when the image is up to date.
        packages: Debian packages to install on top of ``minbase``.
        suite: Debian suite.
        mirror: Debian mirror URI; read from the machine's apt sources when None.

    Returns:
        The image name.

    Raises:
        SandboxError: debootstrap is missing or fails, not running as root, or the import fails.
    """
    client = _docker_client()
    wanted = packages_label(packages)
    old_id: str | None = None
    if image_exists(name, client):
        have = image_packages(name, client)
        if not force and have == wanted:
            log.info("image %s is up to date (packages: %s); skipping build (force=True rebuilds)", name, wanted)
            return name
        old_id = client.images.get(name).id
        if force:
            log.info("image %s exists; rebuilding it (force)", name)
        else:
            log.info(
                "image %s was built with packages %s, wanted %s: rebuilding it",
                name,
                have if have is not None else "(unrecorded)",
                wanted,
            )
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap not found: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise SandboxError("building the image needs root (debootstrap): run it as root or via sudo")
    mirror = mirror or apt_mirror(suite)
    root = Path(tempfile.mkdtemp(prefix="agentgym-rootfs-", dir="/var/tmp"))
    try:
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = proc.stdout.decode(errors="replace")[-2000:]
            raise SandboxError(f"debootstrap failed (exit {proc.returncode}); check the mirror {mirror}:\n{tail}")
        _customize(root)
        changes = [
            f"USER {AGENT_USER}",
            "WORKDIR /workspace",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            "LABEL agentgym.image=1",
            f"LABEL {PACKAGES_LABEL}={wanted}",
            'CMD ["/bin/bash"]',
        ]
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
        try:
            client.api.import_image_from_stream(tar.stdout, repository=repository, tag=tag, changes=changes)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise SandboxError(f"tar of the rootfs failed (exit {tar.returncode})")
        if not image_exists(name, client):
            raise SandboxError(f"docker import did not produce {name}; see the dockerd log")
        log.info("built %s (packages: %s)", name, wanted)
        if old_id is not None and old_id != client.images.get(name).id:
            try:  # the previous build, now untagged; kept if a container still uses it
                client.images.remove(old_id)
            except Exception as e:
                log.info("kept the previous image %s: %s", old_id[:19], e)
        return name
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agentgym.sandboxes.image``: build the base image; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m agentgym.sandboxes.image", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_IMAGE, help="image name:tag (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(build_image(args.name, force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
