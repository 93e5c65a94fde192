"""ShellSession: a shell whose state persists across commands, on any sandbox."""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Mapping

from .base import ExecResult, Sandbox

# Each command runs in a fresh bash that first loads the session's saved state (cwd,
# variables, functions, aliases) and saves it again on exit, whatever way the command
# exits. A command killed at its timeout saves nothing, so the session simply carries on
# from the state before it: there is no wedged shell to recover.
_SKIP = (
    "BASH*|__ag_*|_|EUID|UID|PPID|SHELLOPTS|PIPESTATUS|FUNCNAME|GROUPS|HISTCMD|LINENO|RANDOM|SECONDS|"
    "SRANDOM|EPOCH*|DIRSTACK|OPTIND|OPTARG|SHLVL|PWD|OLDPWD|COMP_*|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|"
    "IFS|PS1|PS2|PS4|BASHOPTS"
)
_SCRIPT = r"""
__ag_dir=%(dir)s
__ag_cmd=$(cat); exec </dev/null
shopt -s expand_aliases
[ -f "$__ag_dir/vars" ] && . "$__ag_dir/vars" 2>/dev/null
cd "$(cat "$__ag_dir/cwd" 2>/dev/null)" 2>/dev/null || cd %(home)s
__ag_save() {
  local __ag_n
  { for __ag_n in $(compgen -v); do
      case $__ag_n in %(skip)s) continue;; esac
      declare -p "$__ag_n" 2>/dev/null
    done
    declare -f; alias -p; } > "$__ag_dir/vars.new" && mv -f "$__ag_dir/vars.new" "$__ag_dir/vars"
  pwd > "$__ag_dir/cwd"
}
trap '__ag_rc=$?; __ag_save; exit $__ag_rc' EXIT
eval "$__ag_cmd"
"""


class ShellSession:
    """A bash session on a sandbox whose state persists across :meth:`run` calls.

    ``cd``, ``export``, shell variables, functions and aliases carry over; each call reports
    its own exit code.

    A command that exceeds its timeout is killed with its process tree (``timed_out``
    is set, exit code 124) and leaves the session's state as it was before it.
    Background jobs and shell options (``set -e``) do not carry over between commands.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.timeout = timeout
        self._dir = f"/tmp/.agentgym-shell-{uuid.uuid4().hex[:12]}"
        self._script = _SCRIPT % {"dir": self._dir, "home": shlex.quote(sandbox.workdir), "skip": _SKIP}
        start = cwd if cwd is not None else sandbox.workdir
        if not start.startswith("/"):
            start = f"{sandbox.workdir.rstrip('/')}/{start}"
        sandbox.write_file(f"{self._dir}/cwd", start + "\n")
        exports = "".join(f"declare -x {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
        sandbox.write_file(f"{self._dir}/vars", exports)

    def run(self, command: str, timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the session (bash syntax); returns its result."""
        return self.sandbox.exec(
            ["/bin/bash", "-c", self._script], timeout=timeout if timeout is not None else self.timeout, stdin=command
        )

    @property
    def cwd(self) -> str:
        """The session's current directory."""
        return self.sandbox.read_file(f"{self._dir}/cwd").decode().strip()

    def close(self) -> None:
        """Forget the session's state (best effort; the sandbox stays open)."""
        try:
            self.sandbox.exec(["rm", "-rf", self._dir], timeout=10)
        except Exception:
            pass

    def __enter__(self) -> ShellSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
