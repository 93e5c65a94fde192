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

import glob
import shutil
import time
shutil.copy("/tests/summarize.awk", "/app/summarize.awk")
shutil.rmtree("/app/data", ignore_errors=True)
shutil.rmtree("/app/build", ignore_errors=True)
os.makedirs("/app/data")
data = {"q1.csv": [5, 7, 11], "q2.csv": [1], "q3.csv": [100, -3]}

def write(name, vals, t):
    p = "/app/data/" + name
    open(p, "w").write("item,amount\n" + "".join(f"x{i},{v}\n" for i, v in enumerate(vals)))
    os.utime(p, (t, t))

def expect():
    return "".join(f"{n} {sum(data[n])}\n" for n in sorted(data))

now = time.time()
for n, v in data.items():
    write(n, v, now - 100)
parts = {}
rc, out, err = run(["make", "-C", "/app"], timeout=20)
rep = lambda: read("/app/build/report.txt") if os.path.exists("/app/build/report.txt") else None
parts["builds"] = rc == 0 and rep() == expect()
data["q2.csv"] = [1, 2, 3]
write("q2.csv", data["q2.csv"], now + 100)
data["q4.csv"] = [9]
write("q4.csv", data["q4.csv"], now + 100)
rc, out, err = run(["make", "-C", "/app"], timeout=20)
parts["rebuilds"] = rc == 0 and rep() == expect()
rc, out, err = run(["make", "-C", "/app", "clean"], timeout=20)
parts["clean"] = rc == 0 and not os.path.exists("/app/build")
print(err[-500:])
done(parts)
