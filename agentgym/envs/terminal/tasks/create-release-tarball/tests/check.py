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

import tarfile
exp = json.loads(read("/tests/expected.json"))
got = {}
with tarfile.open("/app/release.tar.gz", "r:gz") as t:
    for m in t.getmembers():
        name = m.name[2:] if m.name.startswith("./") else m.name
        assert name == "myapp" or name.startswith("myapp/"), name
        if m.isfile():
            got[name] = t.extractfile(m).read().decode()
assert got == exp, sorted(got)
print("ok")
