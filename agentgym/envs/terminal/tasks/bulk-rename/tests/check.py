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

import re
import tempfile
cases = json.loads(read("/tests/cases.json"))
ok = 0
for i, c in enumerate(cases):
    t = tempfile.mkdtemp()
    for f in c["files"]:
        open(os.path.join(t, f), "w").write(f + "\n")
    os.mkdir(os.path.join(t, "subdir.jpeg"))
    rc, out, err = run(["python3", "/app/bulk_rename.py", t, c["re"], c["rep"]])
    after = sorted(os.listdir(t))
    if c["ok"]:
        ren = {f: re.sub(c["re"], c["rep"], f) for f in c["files"]}
        exp = sorted(set(ren.values()) | {"subdir.jpeg"})
        lines = [f"{a} -> {b}" for a, b in sorted(ren.items()) if a != b]
        content_ok = all(read(os.path.join(t, b)) == a + "\n" for a, b in ren.items())
        good = rc == 0 and after == exp and out.strip().splitlines() == lines and content_ok
    else:
        good = rc == 2 and after == sorted(c["files"] + ["subdir.jpeg"])
    print("case", i, "ok" if good else "FAIL", rc, after, err[-200:])
    ok += good
sys.exit(0 if ok == len(cases) else 1)
