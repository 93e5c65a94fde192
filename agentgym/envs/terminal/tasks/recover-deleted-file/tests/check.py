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
    """Run an agent program (list argv) with a timeout; returns CompletedProcess or None on timeout."""
    try:
        return subprocess.run(["timeout", str(timeout)] + cmd, input=inp, capture_output=True, text=True, cwd=cwd)
    except Exception as e:  # noqa: BLE001
        print("run failed:", e, file=sys.stderr)
        return None

assert read("/app/repo/docs/recipe.md") == read("/tests/expected.md")
print("ok")
