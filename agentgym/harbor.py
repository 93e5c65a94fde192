"""Harbor task folders in and out: the task format of terminal-bench's successor, read as agentgym tasks.

A Harbor task is a folder::

    instruction.md          what the agent reads
    task.toml               [metadata], [agent] timeout_sec, [verifier] timeout_sec, [environment] resources
    environment/Dockerfile  the starting state (plus the files it copies)
    tests/test.sh           the verifier: writes /logs/verifier/reward.txt (a number) or reward.json (named numbers)
    solution/solve.sh       the oracle

:func:`load_task` turns one folder into a self-contained :class:`~agentgym.tasks.Task` (every file's
content is inside it, so a task set round-trips through JSONL); :func:`load_tasks` reads a task
folder or a folder of them; :func:`export_task` writes a folder back.

The starting state is not built by ``docker build``: agentgym sandboxes run the agent as an
unprivileged user on a read-only root, so the Dockerfile is *planned* (:func:`plan_dockerfile`)
into package installs (apt and pip, which need an image layer: built locally for the Docker
backend, present on the host for the local one) and file steps (``COPY``, ``ENV``, ``RUN``),
replayed inside the sandbox, as the agent's user, in the task's ``WORKDIR``. What cannot be
built offline or replayed is said per task, per backend, in ``Task.setup["unsupported"]``,
before any episode runs.

Also read: terminal-bench folders (``task.yaml``, ``Dockerfile`` at the top, ``run-tests.sh``,
``solution.sh``; :func:`load_tbench_task`), ``task.toml``'s ``[verifier.env]``, ``[solution.env]``,
``[environment.env]``, ``[environment] workdir``/``gpus``, scripts with CRLF line ends. Bases built
``FROM ubuntu:*`` (Harbor's own template) are planned on the Debian base only when asked
(``ubuntu_on_debian=True``, ``--ubuntu-on-debian``); otherwise the reason names that switch.
Multi-step tasks (``[[steps]]``) and docker-compose environments are refused with their reason.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.tasks import SPLITS, Task, TaskSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found]  # only on 3.10, where it is declared

BASE_IMAGE = "agentgym/base:bookworm"
"""The image every Harbor task's environment is planned on (Debian bookworm, python3, the shell tools)."""
DEFAULT_WORKDIR = "/app"
"""Harbor's convention when a Dockerfile sets no ``WORKDIR``."""
BACKENDS = ("local", "docker")
_SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/etc", "/proc", "/sys", "/dev", "/run", "/boot", "/var", "/root")
_IGNORED = ("EXPOSE", "LABEL", "MAINTAINER", "HEALTHCHECK", "VOLUME", "STOPSIGNAL", "ONBUILD", "SHELL")
_APT_NOISE = re.compile(
    r"^(apt-get|apt)\s+(update|clean|autoclean|autoremove)\b|^rm\s+-[a-zA-Z]*\s+/var/lib/apt/lists|^true$|^:$"
)


class HarborFormatError(ValueError):
    """A folder that is not a readable Harbor task (missing file, bad TOML); the message says what to fix."""


def _is_ubuntu(image: str) -> bool:
    """``ubuntu[:tag]`` or terminal-bench's ``t-bench/ubuntu-*`` base (Harbor's template starts FROM ubuntu:24.04)."""
    name, _, tag = image.partition(":")
    name = name.removeprefix("docker.io/").removeprefix("library/")
    if name == "buildpack-deps":  # Ubuntu's codenames; the Debian ones are planned as Debian
        return tag.startswith(("jammy", "noble", "focal"))
    return name == "ubuntu" or name.startswith("ghcr.io/laude-institute/t-bench/ubuntu-")


def _debian_base(image: str, ubuntu_on_debian: bool = False) -> str | None:
    """Why ``image`` is planned on :data:`BASE_IMAGE` (a note), or None when it cannot be.

    Ubuntu bases are planned on Debian only with ``ubuntu_on_debian`` (most published Harbor tasks
    start ``FROM ubuntu:24.04`` and only add apt and pip packages, which Debian has by the same names).
    """
    name, _, tag = image.partition(":")
    name = name.removeprefix("docker.io/").removeprefix("library/")
    if name == BASE_IMAGE.split(":")[0]:
        return ""
    if name in ("debian", "buildpack-deps") and (
        tag in ("", "latest", "stable", "12") or tag.startswith(("bookworm", "12"))
    ):
        return f"FROM {image} is planned on {BASE_IMAGE} (Debian bookworm)"
    if name.startswith("ghcr.io/laude-institute/t-bench/python-3"):  # terminal-bench's python-3-xx bases
        return f"FROM {image} (terminal-bench's Debian Python base) is planned on {BASE_IMAGE}"
    if ubuntu_on_debian and _is_ubuntu(image):
        return (
            f"FROM {image} is planned on {BASE_IMAGE} (Debian bookworm, not Ubuntu: apt packages by the same names, "
            "Python 3.11)"
        )
    if name == "python" and (tag == "" or re.match(r"^3(\.\d+)?", tag)) and "alpine" not in tag:
        return (
            f"FROM {image} is planned on {BASE_IMAGE} (Debian bookworm, Python 3.11 from Debian, not {tag or 'latest'})"
        )
    return None


@dataclass
class EnvironmentPlan:
    """What a Dockerfile asks for, split into what agentgym builds and what it replays."""

    base: str = BASE_IMAGE
    workdir: str = DEFAULT_WORKDIR
    env: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Replayed in order inside the sandbox: ``{"copy": [src...], "dest": path}``, ``{"run": cmd}``,
    ``{"env": {k: v}}``."""
    cmd: str | None = None
    """Started once in the background when an episode starts (``CMD``/``ENTRYPOINT``)."""
    apt: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unsupported: dict[str, list[str]] = field(default_factory=dict)
    """Backend -> reasons the task cannot run there (``"all"`` for both)."""

    def block(self, reason: str, backend: str = "all") -> None:
        """Record that the task cannot run on ``backend`` (``all``: anywhere), and why."""
        self.unsupported.setdefault(backend, []).append(reason)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``Task.setup`` holds it)."""
        return {
            "base": self.base,
            "workdir": self.workdir,
            "env": dict(self.env),
            "steps": list(self.steps),
            "cmd": self.cmd,
            "apt": list(self.apt),
            "pip": list(self.pip),
            "notes": list(self.notes),
            "unsupported": {k: list(v) for k, v in self.unsupported.items()},
        }


def _logical_lines(text: str) -> list[str]:
    """Dockerfile instructions: comments dropped, backslash continuations joined."""
    out: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append(buf.strip())
        buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _exec_form(args: str) -> str:
    """A ``["a", "b"]`` exec form as one shell command; a shell form unchanged."""
    if args.startswith("["):
        try:
            parts = json.loads(args)
        except json.JSONDecodeError:
            return args
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return shlex.join(parts)
    return args


def _substitute(value: str, variables: dict[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` / ``${NAME:-default}`` from ``variables`` (ARG and ENV); others unchanged."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        default = m.group(3)
        if name in variables:
            return variables[name]
        return default if default is not None else m.group(0)

    return re.sub(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})", sub, value)


def _env_pairs(args: str) -> dict[str, str]:
    """``ENV A=1 B="x y"`` or the legacy ``ENV A 1``."""
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(t.split("=", 1) for t in tokens if "=" in t)


def _split_commands(cmd: str) -> list[tuple[str, str]]:
    """A RUN line's top-level ``&&`` / ``;`` parts, each with the separator that followed it (quotes respected)."""
    parts: list[tuple[str, str]] = []
    buf, quote, i = "", "", 0
    while i < len(cmd):
        c = cmd[i]
        if quote:
            buf += c
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(cmd):
                buf += cmd[i + 1]
                i += 1
        elif c in "'\"":
            quote = c
            buf += c
        elif cmd.startswith("&&", i) or c == ";":
            sep = "&&" if c == "&" else ";"
            parts.append((buf.strip(), sep))
            buf = ""
            i += len(sep)
            continue
        else:
            buf += c
        i += 1
    parts.append((buf.strip(), ""))
    return parts


def _packages(part: str) -> tuple[str, list[str]] | None:
    """``("apt", [...])`` or ``("pip", [...])`` when ``part`` is a package install, else None."""
    try:
        words = shlex.split(part)
    except ValueError:
        return None
    while words and ("=" in words[0] and not words[0].startswith("-")):  # VAR=value prefixes
        words = words[1:]
    if words[:1] == ["sudo"]:
        words = words[1:]
    if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words[1:3]:
        names = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
        return "apt", names
    pip_at = None
    if words[:1] in (["pip"], ["pip3"]) and "install" in words[1:2]:
        pip_at = 2
    elif words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]) and "install" in words[3:4]:
        pip_at = 4
    elif words[:3] == ["uv", "pip", "install"]:
        pip_at = 3
    if pip_at is not None:
        names, skip = [], False
        for w in words[pip_at:]:
            if skip:
                skip = False
                continue
            if w in ("-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--target", "-t"):
                skip = True
                names.append(f"{w} <file>") if w in ("-r", "--requirement") else None
                continue
            if not w.startswith("-"):
                names.append(w)
        return "pip", names
    return None


def plan_dockerfile(text: str, ubuntu_on_debian: bool = False) -> EnvironmentPlan:
    """Plan a Dockerfile: base image, ``WORKDIR``, package installs, replayable file steps, what is unsupported.

    ``ubuntu_on_debian``: plan ``FROM ubuntu:*`` on the Debian base image (with a note) instead of refusing it.
    """
    plan = EnvironmentPlan()
    variables: dict[str, str] = {}
    saw_from = saw_workdir = False
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            if saw_from:
                plan.block("multi-stage Dockerfiles (a second FROM) are not supported")
                continue
            saw_from = True
            image = _substitute(
                re.sub(r"--platform=\S+\s*", "", args).split(" AS ")[0].split(" as ")[0].strip(), variables
            )
            note = _debian_base(image, ubuntu_on_debian)
            if note is None and _is_ubuntu(image):
                plan.block(
                    f"FROM {image}: Ubuntu is not Debian and cannot be pulled offline; to plan it on {BASE_IMAGE} "
                    "anyway (apt packages by the same names, Python 3.11) pass --ubuntu-on-debian "
                    "(Terminal-v0: ubuntu_on_debian=True)"
                )
            elif note is None:
                plan.block(
                    f"FROM {image}: only {BASE_IMAGE} or a Debian bookworm base (debian:bookworm*, python:3*) can be "
                    "built offline here; rebase the task on one of them"
                )
            elif note:
                plan.notes.append(note)
        elif keyword == "ARG":
            name, _, default = args.partition("=")
            variables.setdefault(name.strip(), default.strip().strip('"'))
        elif keyword == "ENV":
            pairs = {k: _substitute(v, {**variables, **plan.env}) for k, v in _env_pairs(args).items()}
            plan.env.update(pairs)
            variables.update(pairs)
            plan.steps.append({"env": pairs})
        elif keyword == "WORKDIR":
            path = _substitute(args.strip('"'), variables)
            if not path.startswith("/"):
                path = f"{plan.workdir.rstrip('/')}/{path}"
            if saw_workdir and path != plan.workdir:
                plan.steps.append({"run": f"mkdir -p {shlex.quote(path)}"})
                plan.notes.append(f"WORKDIR {path} after {plan.workdir}: the episode still starts in {plan.workdir}")
                continue
            saw_workdir = True
            if path == "/" or path.startswith(_SYSTEM_TREES) or path.startswith("/tmp"):
                plan.block(f"WORKDIR {path}: the workspace must be a directory of its own (e.g. /app)")
            plan.workdir = path
        elif keyword in ("COPY", "ADD"):
            words = shlex.split(args)
            flags = [w for w in words if w.startswith("--")]
            words = [w for w in words if not w.startswith("--")]
            if any(f.startswith("--from") for f in flags):
                plan.block(f"{keyword} --from (multi-stage) is not supported")
                continue
            if len(words) < 2:
                plan.block(f"{keyword} {args}: needs a source and a destination")
                continue
            if words[0].startswith("["):
                words = json.loads(args[args.index("[") :])
            srcs, dest = words[:-1], _substitute(words[-1], variables)
            if keyword == "ADD" and any(s.startswith(("http://", "https://")) for s in srcs):
                plan.block(f"ADD {srcs[0]}: downloads are not possible offline; put the file in environment/")
                continue
            if not dest.startswith("/"):
                dest = f"{plan.workdir.rstrip('/')}/{dest}" if dest not in (".", "./") else plan.workdir
            plan.steps.append({"copy": srcs, "dest": dest, "extract": keyword == "ADD"})
        elif keyword == "RUN":
            command = _substitute(_exec_form(re.sub(r"^(--\S+\s+)+", "", args)), variables)
            # Package installs (and apt's housekeeping) become ``true``; everything else stays exactly as written,
            # separators included, so compound commands (for ...; do ...; done) keep their meaning.
            kept, replay_needed = [], False
            for part, sep in _split_commands(command):
                kind = _packages(part)
                text = part
                if kind is not None:
                    target = plan.apt if kind[0] == "apt" else plan.pip
                    target.extend(n for n in kind[1] if n not in target)
                    text = "true"
                elif part and _APT_NOISE.match(part):
                    text = "true"
                elif part:
                    replay_needed = True
                kept.append(f"{text} {sep}".strip() if sep else text)
            if replay_needed:
                plan.steps.append({"run": " ".join(p for p in kept if p)})
        elif keyword in ("CMD", "ENTRYPOINT"):
            plan.cmd = _exec_form(args)
        elif keyword == "USER":
            if args.split(":")[0] not in ("root", "0"):
                plan.notes.append(f"USER {args}: the agent always runs as the sandbox's unprivileged user")
        elif keyword in _IGNORED:
            continue
        else:
            plan.block(f"unknown Dockerfile instruction {keyword}")
    if not saw_from:
        plan.block("the Dockerfile has no FROM line")
    if not saw_workdir:
        plan.notes.append(f"no WORKDIR: the workspace is {DEFAULT_WORKDIR}")
    outside = [s["dest"] for s in plan.steps if "copy" in s and not _under(s["dest"], plan.workdir)]
    if outside:
        plan.block(
            f"COPY to {', '.join(dict.fromkeys(outside))}: outside WORKDIR {plan.workdir}, which is all the agent's "
            "user may write; copy into the workdir instead"
        )
    plan.pip = [p for p in plan.pip if re.split(r"[<>=!~\[ ]", p, maxsplit=1)[0].lower() not in ("pip", "wheel")]
    if plan.pip:
        plan.block(
            f"pip packages ({', '.join(plan.pip)}) cannot go into the host's read-only /usr"
            + ("" if plan.unsupported.get("all") else "; use the docker backend"),
            "local",
        )
    return plan


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def file_entry(path: Path) -> dict[str, Any]:
    """A file as JSON-ready data: UTF-8 text or base64 bytes, and its permission bits."""
    data = path.read_bytes()
    mode = path.stat().st_mode & 0o777
    try:
        return {"text": data.decode("utf-8"), "mode": mode}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii"), "mode": mode}


def entry_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes of a :func:`file_entry`."""
    if "base64" in entry:
        return base64.b64decode(entry["base64"])
    return str(entry.get("text", "")).encode("utf-8")


def read_tree(root: Path, max_bytes: int = 64 * 1024 * 1024) -> dict[str, dict[str, Any]]:
    """Every regular file under ``root`` as ``{relative path: file_entry}`` (symlinks are refused)."""
    files: dict[str, dict[str, Any]] = {}
    total = 0
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise HarborFormatError(f"{path}: symlinks are not allowed in a task folder; copy the file instead")
        if path.is_file():
            total += path.stat().st_size
            if total > max_bytes:
                raise HarborFormatError(f"{root}: more than {max_bytes >> 20} MiB of files; keep task folders small")
            files[rel] = file_entry(path)
    return files


def write_tree(root: Path, files: dict[str, dict[str, Any]]) -> None:
    """Write :func:`read_tree` data under ``root`` (modes kept); paths may not leave ``root``."""
    for rel, entry in files.items():
        dest = (root / rel).resolve()
        if not _under(str(dest), str(root.resolve())):
            raise HarborFormatError(f"file {rel!r} would be written outside {root}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(entry_bytes(entry))
        dest.chmod(int(entry.get("mode", 0o644)))


def is_task_dir(path: Path) -> bool:
    """A Harbor task folder (``task.toml`` or ``instruction.md``) or a terminal-bench one (``task.yaml``)."""
    return any((path / name).is_file() for name in ("task.toml", "instruction.md", "task.yaml"))


def _task_toml(folder: Path) -> dict[str, Any]:
    path = folder / "task.toml"
    if not path.is_file():
        return {}
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8-sig").replace("\r\n", "\n"))
        return data
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HarborFormatError(f"{path}: not valid TOML ({e})") from e


def _seconds(section: dict[str, Any], default: float, key: str = "timeout_sec") -> float:
    value = section.get(key, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 and math.isfinite(seconds) else default


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


_HOST_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*")


def _env_table(section: dict[str, Any], what: str, notes: list[str]) -> dict[str, str]:
    """``[verifier.env]``-style tables as strings; values naming host variables (secrets) are left out, noted."""
    table = section.get("env")
    if not isinstance(table, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in table.items():
        text = (
            json.dumps(value)
            if isinstance(value, (list, dict))
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        if _HOST_VARIABLE.search(text):
            notes.append(f"{what} {key} = {text!r} names a host variable (a secret?): not passed, the sandbox has none")
            continue
        out[str(key)] = text
    return out


def _normalize_scripts(files: dict[str, dict[str, Any]], where: str, notes: list[str]) -> None:
    """Shell scripts saved with Windows line ends (CRLF) get LF: bash reads the CR as part of each word."""
    fixed = []
    for rel, entry in files.items():
        text = entry.get("text")
        if isinstance(text, str) and "\r\n" in text and (rel.endswith(".sh") or text.startswith("#!")):
            entry["text"] = text.replace("\r\n", "\n")
            fixed.append(rel)
    if fixed:
        notes.append(f"{where}: {', '.join(sorted(fixed))} had Windows line ends (CRLF), read as LF")


_TEST_PIP = re.compile(r"(?:\buv\s+pip|\bpip3?|\bpython3?\s+-m\s+pip)\s+install\s+([^\n;&|]*)")
_TEST_UV_WITH = re.compile(r"\b(?:uvx|uv\s+run)\b[^\n]*")
_PROVIDED = {"pytest", "pytest-json-ctrf", "pytest-json-report", "pluggy", "iniconfig", "packaging"}


def _verifier_pip(scripts: Iterable[str]) -> list[str]:
    """PyPI packages a verifier script installs at run time, other than pytest and its report plugins."""
    names: list[str] = []
    for raw in scripts:
        script = raw.replace("\\\n", " ")
        found = [m.group(1) for m in _TEST_PIP.finditer(script)]
        for m in _TEST_UV_WITH.finditer(script):
            found += re.findall(r"--with[= ]\s*(\S+)", m.group(0))
        for chunk in found:
            try:
                words = shlex.split(chunk)
            except ValueError:
                words = chunk.split()
            skip = False
            for w in words:
                if skip:
                    skip = False
                    continue
                if w in ("-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-t"):
                    skip = True
                    continue
                if w.startswith(("-", "$", "/", ".")) or "/" in w:
                    continue
                base = re.split(r"[<>=!~\[;@ ]", w, maxsplit=1)[0].lower().replace("_", "-")
                if base and base not in _PROVIDED and w not in names:
                    names.append(w)
    return names


def _plan_for(
    folder: Path, env_dir: Path, environment: dict[str, Any], ubuntu_on_debian: bool
) -> tuple[EnvironmentPlan, dict[str, dict[str, Any]]]:
    """The environment plan and build context of a task whose Dockerfile (if any) is ``env_dir/Dockerfile``."""
    dockerfile = env_dir / "Dockerfile"
    if dockerfile.is_file():
        plan = plan_dockerfile(dockerfile.read_text(encoding="utf-8-sig", errors="replace"), ubuntu_on_debian)
    else:
        plan = EnvironmentPlan()
        image = environment.get("docker_image")
        if image and _debian_base(str(image), ubuntu_on_debian) is None:
            plan.block(f"prebuilt image {image}: not available offline and there is no environment/Dockerfile")
        else:
            plan.notes.append(f"no environment/Dockerfile: planned on {BASE_IMAGE} with WORKDIR {DEFAULT_WORKDIR}")
    workdir = environment.get("workdir")
    if isinstance(workdir, str) and workdir.startswith("/") and workdir.rstrip("/") != plan.workdir.rstrip("/"):
        plan.notes.append(f"[environment] workdir = {workdir!r} (Dockerfile: {plan.workdir}): the episode starts there")
        plan.workdir = workdir.rstrip("/") or "/"
        if plan.workdir == "/" or plan.workdir.startswith(_SYSTEM_TREES) or plan.workdir.startswith("/tmp"):
            plan.block(
                f"[environment] workdir {plan.workdir}: the workspace must be a directory of its own (e.g. /app)"
            )
    env_vars = _env_table(environment, "[environment.env]", plan.notes)
    if env_vars:
        plan.env = {**env_vars, **plan.env}
        plan.steps.insert(0, {"env": env_vars})
    gpus = environment.get("gpus", 0)
    if isinstance(gpus, (int, float)) and not isinstance(gpus, bool) and gpus > 0:
        plan.block(f"[environment] gpus = {gpus:g}: agentgym's shell sandboxes have no GPU")
    if environment.get("allow_internet") or environment.get("network_mode") in ("public", "allowlist"):
        plan.notes.append("the task allows internet access; agentgym sandboxes have none")
    return plan, (read_tree(env_dir) if env_dir.is_dir() else {})


def _check_copies(plan: EnvironmentPlan, context: dict[str, dict[str, Any]], where: str) -> None:
    for step in plan.steps:
        for given in step.get("copy", []):
            src = given.strip("/").removeprefix("./") if given not in (".", "./") else ""
            if src and not any(_under(k, src) or _glob_match(k, src) for k in context):
                plan.block(f"COPY {given}: no such file in {where}")


def _finish_notes(plan: EnvironmentPlan, tests: dict[str, dict[str, Any]], solution: dict[str, Any] | None) -> None:
    scripts = [str(e["text"]) for rel, e in tests.items() if rel.endswith(".sh") and "text" in e]
    if any(
        re.search(r"\b(curl|wget)\b[^\n|]*https?://|\buvx?\b|\bpip3? install\b|\bapt(-get)? install\b", s)
        for s in scripts
    ):
        plan.notes.append(
            "tests/test.sh installs or downloads at verification time: there is no network, so offline stand-ins "
            "answer apt-get/pip/uv/uvx for what the image already has (pytest, python3, ...); anything else fails"
        )
    extra = [p for p in _verifier_pip(scripts) if p not in plan.pip]
    if extra:
        plan.pip.extend(extra)
        plan.notes.append(
            f"the verifier installs {', '.join(extra)} at run time: put into the task's image (docker backend)"
        )
        if "local" not in plan.unsupported or not any("verifier" in r for r in plan.unsupported["local"]):
            plan.block(
                f"the verifier needs PyPI packages ({', '.join(extra)}) that cannot go into the host's read-only "
                "/usr; use the docker backend",
                "local",
            )
    if not solution or "solve.sh" not in solution.get("files", {}):
        plan.notes.append("no solution/solve.sh: there is no oracle, so `tasks validate` cannot check this task")


def load_task(folder: str | Path, *, ubuntu_on_debian: bool = False) -> Task:
    """One Harbor task folder as a self-contained agentgym task (``setup["format"] == "harbor"``).

    A terminal-bench folder (``task.yaml``, ``Dockerfile``, ``run-tests.sh``, ``solution.sh``) is read
    too (:func:`load_tbench_task`). ``ubuntu_on_debian``: plan ``FROM ubuntu:*`` on the Debian base image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HarborFormatError(f"{folder}: not a directory")
    instruction = folder / "instruction.md"
    if not instruction.is_file() and (folder / "task.yaml").is_file():
        return load_tbench_task(folder, ubuntu_on_debian=ubuntu_on_debian)
    config = _task_toml(folder)
    if not instruction.is_file():
        if (folder / "steps").is_dir() or isinstance(config.get("steps"), list):
            raise HarborFormatError(
                f"{folder}: a multi-step task ([[steps]] in task.toml, steps/*/instruction.md) is not supported; "
                "only single-step tasks (instruction.md at the top) are"
            )
        raise HarborFormatError(f"{folder}: no instruction.md (a Harbor task folder needs one)")
    test_sh = folder / "tests" / "test.sh"
    if not test_sh.is_file():
        raise HarborFormatError(f"{folder}: no tests/test.sh (the verifier that writes /logs/verifier/reward.txt)")
    environment = _section(config, "environment")
    env_dir = folder / "environment"
    plan, context = _plan_for(folder, env_dir, environment, ubuntu_on_debian)
    if any((env_dir / n).exists() for n in ("docker-compose.yaml", "docker-compose.yml", "compose.yaml")):
        plan.block("multi-container environments (docker-compose) are not supported")
    _check_copies(plan, context, "environment/")
    metadata = dict(_section(config, "metadata"))
    task_section = _section(config, "task")
    agent = _section(config, "agent")
    verifier = _section(config, "verifier")
    split = metadata.get("split")
    metadata.update(
        {
            "format": "harbor",
            "name": task_section.get("name", folder.name),
            "source": str(folder),
            "agent_timeout": _seconds(agent, 600.0),
            "resources": {
                k: environment[k]
                for k in ("cpus", "memory_mb", "storage_mb", "memory", "storage", "gpus")
                if k in environment and isinstance(environment[k], (int, float, str))
            },
        }
    )
    tests = read_tree(folder / "tests")
    _normalize_scripts(tests, "tests/", plan.notes)
    solution: dict[str, Any] | None = None
    if (folder / "solution").is_dir():
        solution = {"files": read_tree(folder / "solution")}
        _normalize_scripts(solution["files"], "solution/", plan.notes)
        solution_env = _env_table(_section(config, "solution"), "[solution.env]", plan.notes)
        if solution_env:
            solution["env"] = solution_env
    verifier_env = _env_table(verifier, "[verifier.env]", plan.notes)
    _finish_notes(plan, tests, solution)
    prompt = instruction.read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n").strip()
    if not prompt:
        raise HarborFormatError(f"{instruction}: empty (the agent would get no task)")
    return Task(
        id=folder.name,
        prompt=prompt,
        setup={"format": "harbor", **plan.to_dict(), "context": context},
        verifier={
            "tests": tests,
            "timeout": _seconds(verifier, 600.0),
            **({"env": verifier_env} if verifier_env else {}),
        },
        solution=solution,
        metadata=metadata,
        split=split if split in SPLITS else None,
    )


_TBENCH_META = ("author_name", "author_email", "difficulty", "category", "tags", "parser_name")
_TBENCH_OWN = {"task.yaml", "run-tests.sh", "solution.sh", "solution.yaml", "docker-compose.yaml", "docker-compose.yml"}
_TBENCH_TEST_SH = """#!/bin/bash
# agentgym: terminal-bench's run-tests.sh as a Harbor verifier (the task passes when the tests do).
export TEST_DIR=/tests
bash /tests/run-tests.sh
status=$?
mkdir -p /logs/verifier
if [ $status -eq 0 ]; then echo 1 > /logs/verifier/reward.txt; else echo 0 > /logs/verifier/reward.txt; fi
"""


def load_tbench_task(folder: str | Path, *, ubuntu_on_debian: bool = False) -> Task:
    """A terminal-bench (Harbor's predecessor) task folder as a Harbor task.

    ``task.yaml`` (``instruction``, ``max_agent_timeout_sec``, ``max_test_timeout_sec``, metadata),
    ``Dockerfile`` with the folder as its build context, ``run-tests.sh`` + ``tests/`` (run with
    ``TEST_DIR=/tests``; reward 1 when it exits 0, as terminal-bench's pytest parser passes a run whose
    tests all pass), ``solution.sh`` or ``solution.yaml`` (a list of commands) as the oracle.
    """
    folder = Path(folder)
    try:
        import yaml  # type: ignore[import-untyped]  # PyYAML: the `tbench` extra
    except ImportError as e:
        raise HarborFormatError(
            f"{folder}: a terminal-bench task (task.yaml); reading it needs PyYAML (pip install 'agentgym[tbench]')"
        ) from e
    try:
        config = yaml.safe_load((folder / "task.yaml").read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise HarborFormatError(f"{folder / 'task.yaml'}: not valid YAML ({e})") from e
    if not isinstance(config, dict):
        raise HarborFormatError(f"{folder / 'task.yaml'}: not a mapping of fields")
    prompt = config.get("instruction")
    if not prompt and isinstance(config.get("descriptions"), list):  # the oldest terminal-bench tasks
        first = [d for d in config["descriptions"] if isinstance(d, dict) and d.get("description")]
        base = [d for d in first if d.get("key") == "base"] or first
        prompt = base[0]["description"] if base else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise HarborFormatError(f"{folder / 'task.yaml'}: no instruction (the agent would get no task)")
    if not (folder / "run-tests.sh").is_file():
        raise HarborFormatError(f"{folder}: no run-tests.sh (terminal-bench's verifier)")
    plan, _ = _plan_for(folder, folder, {}, ubuntu_on_debian)
    compose = next((folder / n for n in ("docker-compose.yaml", "docker-compose.yml") if (folder / n).is_file()), None)
    if compose is not None:
        try:
            services = (yaml.safe_load(compose.read_text()) or {}).get("services") or {}
        except (yaml.YAMLError, AttributeError):
            services = {}
        if isinstance(services, dict) and len(services) > 1:
            plan.block(f"multi-container environments (docker-compose: {', '.join(services)}) are not supported")
    skip = ("tests/", "solution/", ".git/")
    context = {k: v for k, v in read_tree(folder).items() if k not in _TBENCH_OWN and not k.startswith(skip)}
    _check_copies(plan, context, "the task folder (terminal-bench's build context)")
    tests = read_tree(folder / "tests")
    tests["run-tests.sh"] = file_entry(folder / "run-tests.sh")
    if "test.sh" in tests:
        raise HarborFormatError(
            f"{folder}: tests/test.sh would clash with the verifier agentgym writes for run-tests.sh"
        )
    tests["test.sh"] = {"text": _TBENCH_TEST_SH, "mode": 0o755}
    _normalize_scripts(tests, "tests/", plan.notes)
    solution: dict[str, Any] | None = None
    if (folder / "solution.sh").is_file():
        solution = {"files": {"solve.sh": file_entry(folder / "solution.sh")}}
    elif (folder / "solution.yaml").is_file():
        try:
            steps = yaml.safe_load((folder / "solution.yaml").read_text()) or []
        except yaml.YAMLError as e:
            raise HarborFormatError(f"{folder / 'solution.yaml'}: not valid YAML ({e})") from e
        commands = [s.get("command") if isinstance(s, dict) else s for s in steps if s]
        script = "#!/bin/bash\n" + "\n".join(str(c).rstrip("\n") for c in commands if c) + "\n"
        solution = {"files": {"solve.sh": {"text": script, "mode": 0o755}}}
    if solution is not None:
        _normalize_scripts(solution["files"], "solution", plan.notes)
    _finish_notes(plan, tests, solution)
    plan.notes.insert(0, "terminal-bench format (task.yaml): run-tests.sh is graded as tests/test.sh")
    metadata = {k: config[k] for k in _TBENCH_META if isinstance(config.get(k), (str, int, float, list))}
    metadata.update(
        {
            "format": "harbor",
            "name": folder.name,
            "source": str(folder),
            "agent_timeout": _seconds(config, 600.0, "max_agent_timeout_sec"),
            "resources": {},
        }
    )
    return Task(
        id=folder.name,
        prompt=prompt.replace("\r\n", "\n").strip(),
        setup={"format": "harbor", **plan.to_dict(), "context": context},
        verifier={"tests": tests, "timeout": _seconds(config, 600.0, "max_test_timeout_sec")},
        solution=solution,
        metadata=metadata,
    )


def _glob_match(name: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    return any(ch in pattern for ch in "*?[") and fnmatch(name, pattern)


def task_dirs(path: str | Path) -> list[Path]:
    """The task folders at ``path``: itself when it is one, else its sub-folders that are (sorted)."""
    root = Path(path)
    if not root.is_dir():
        raise HarborFormatError(f"{root}: no such directory (give a Harbor task folder or a folder of them)")
    if is_task_dir(root):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and is_task_dir(p))
    if not found:
        raise HarborFormatError(
            f"{root}: neither a Harbor task folder (instruction.md, task.toml) nor a folder of them"
        )
    return found


def load_tasks(
    paths: str | Path | Iterable[str | Path],
    name: str | None = None,
    *,
    ubuntu_on_debian: bool = False,
    errors: dict[str, str] | None = None,
) -> TaskSet:
    """A task set from Harbor task folders (each path a task folder or a folder of them).

    ``errors``: when given, a folder that cannot be read is left out and its reason put there (keyed by
    the folder's name) instead of failing the whole set. ``ubuntu_on_debian``: see :func:`load_task`.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    tasks = []
    for d in (d for p in paths for d in task_dirs(p)):
        try:
            tasks.append(load_task(d, ubuntu_on_debian=ubuntu_on_debian))
        except (HarborFormatError, OSError) as e:
            if errors is None:
                raise
            errors[d.name] = str(e).removeprefix(f"{d}: ")
    if errors is not None and not tasks:
        raise HarborFormatError("no task could be read: " + "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5]))
    return TaskSet(tasks, name or (Path(paths[0]).name if len(paths) == 1 else "harbor"))


def unsupported_reasons(task: Task, backend: str) -> list[str]:
    """Why ``task`` cannot run on ``backend`` (empty when it can)."""
    blocked: dict[str, list[str]] = task.setup.get("unsupported", {})
    return [*blocked.get("all", []), *blocked.get(backend, [])]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def export_task(task: Task, dest: str | Path) -> Path:
    """Write a Harbor-format task (one :func:`load_task` read) back as a folder ``dest/<task id>``."""
    if task.setup.get("format") != "harbor":
        raise HarborFormatError(
            f"task {task.id!r} is not a shell task in the Harbor format; export it with its environment's exporter"
        )
    folder = Path(dest) / task.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instruction.md").write_text(task.prompt.rstrip() + "\n")
    skip = {"format", "name", "source", "agent_timeout", "resources"}
    metadata = {k: v for k, v in task.metadata.items() if k not in skip and isinstance(v, (str, int, float, list))}
    if task.split:
        metadata["split"] = task.split
    lines = ['version = "1.0"', "", "[metadata]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(metadata.items())]
    lines += ["", "[verifier]", f"timeout_sec = {float(task.verifier.get('timeout', 600.0))!r}"]
    lines += ["", "[agent]", f"timeout_sec = {float(task.metadata.get('agent_timeout', 600.0))!r}"]
    lines += ["", "[environment]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(task.metadata.get("resources", {}).items())]
    (folder / "task.toml").write_text("\n".join(lines) + "\n")
    write_tree(folder / "environment", task.setup.get("context", {}))
    write_tree(folder / "tests", task.verifier.get("tests", {}))
    if task.solution:
        write_tree(folder / "solution", task.solution.get("files", {}))
    return folder


__all__ = [
    "BASE_IMAGE",
    "DEFAULT_WORKDIR",
    "EnvironmentPlan",
    "HarborFormatError",
    "export_task",
    "load_task",
    "load_tasks",
    "load_tbench_task",
    "plan_dockerfile",
    "task_dirs",
    "unsupported_reasons",
]
