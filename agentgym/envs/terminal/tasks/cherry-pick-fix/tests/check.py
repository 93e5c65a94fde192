"""Verifier for this task (run by tests/test.sh as `python3 /tests/check.py`, cwd /app)."""
import json
import os
import subprocess
import sys


def done(parts):
    """Print the named components as REWARD_JSON and exit 0 only when all pass."""
    ok = all(parts.values())
    print("REWARD_JSON " + json.dumps({"reward": int(ok), **{k: int(v) for k, v in parts.items()}}))
    sys.exit(0 if ok else 1)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def run(cmd, inp=None, timeout=10, cwd="/app"):
    """Run an agent program (argv list) under `timeout`; output goes through files, not pipes, so a
    background child that keeps them open cannot hang the verifier. Returns (returncode, stdout, stderr)."""
    import tempfile
    with tempfile.TemporaryFile("w+") as o, tempfile.TemporaryFile("w+") as e, tempfile.TemporaryFile("w+") as i:
        i.write(inp or "")
        i.seek(0)
        rc = subprocess.run(["timeout", "-s", "KILL", str(timeout)] + cmd, stdin=i, stdout=o, stderr=e, cwd=cwd).returncode
        o.seek(0)
        e.seek(0)
        return rc, o.read(), e.read()

def git(*a):
    return subprocess.run(["git", "-C", "/app/repo", *a], capture_output=True, text=True).stdout
old = read("/tests/main.txt").strip()
files = set(git("ls-tree", "-r", "--name-only", "HEAD").split())
parts = {
    "one_commit": git("rev-parse", "HEAD~1").strip() == old,
    "fix_applied": git("show", "HEAD:pagination.py") == read("/tests/pagination.py"),
    "nothing_else": files == {"pagination.py", "README"},
    "message": git("log", "-1", "--format=%s").strip() == "Fix off-by-one in paginate",
    "clean": git("status", "--porcelain").strip() == "" and git("symbolic-ref", "--short", "HEAD").strip() == "main",
}
done(parts)
