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

import shutil
import time
shutil.copy("/tests/worker.py", "/app/worker.py")
parts = {}
for n, key in ((6, "parallel_6"), (11, "parallel_11")):
    shutil.rmtree("/app/out", ignore_errors=True)
    t0 = time.time()
    rc, out, err = run(["bash", "/app/launch.sh", str(n)], timeout=30)
    el = time.time() - t0
    exp = "".join(f"worker {i} result {i * i}\n" for i in range(1, n + 1))
    summ = read("/app/out/summary.txt") if os.path.exists("/app/out/summary.txt") else ""
    print(key, rc, round(el, 2))
    parts[key] = rc == 0 and el < 4.5 and summ == exp
done(parts)
