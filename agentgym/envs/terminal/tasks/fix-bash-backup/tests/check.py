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

import tempfile
base = tempfile.mkdtemp()
src = os.path.join(base, "my src")
files = ["a.txt", "notes/b c.txt", "deep/er/-dash.txt", "deep/er/skip.log", "x y/z.txt", "x y/readme", "t.txt.bak", "-top.txt"]
for f in files:
    p = os.path.join(src, f)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "w").write("content " + f + "\n")
open(os.path.join(base, "decoy.txt"), "w").write("decoy\n")
dest = os.path.join(base, "back up")
exp = sorted(f for f in files if f.endswith(".txt"))
rc, out, err = run(["bash", "/app/backup.sh", src, dest], cwd=base)
got = []
for root, ds, fs in os.walk(dest):
    for f in fs:
        got.append(os.path.relpath(os.path.join(root, f), dest))
content_ok = all(read(os.path.join(dest, f)) == "content " + f + "\n" for f in exp if os.path.exists(os.path.join(dest, f)))
parts = {"copies": rc == 0 and sorted(got) == exp and content_ok,
         "message": out.strip().endswith(f"backed up {len(exp)} files")}
rc1, out1, err1 = run(["bash", "/app/backup.sh", src], cwd=base)
parts["usage"] = rc1 == 1 and out1.strip() == "" and err1.strip() != ""
print(rc, out, err[-500:], sorted(got))
done(parts)
