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
shutil.copy("/tests/worker.py", "/app/service/worker.py")

def workers():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if b"service/worker.py" in open(f"/proc/{p}/cmdline", "rb").read():
                    out.append(int(p))
            except OSError:
                pass
    return out

def wait_ready():
    for _ in range(50):
        if os.path.exists("/app/service/run/ready"):
            return True
        time.sleep(0.1)
    return False

parts = {}
# 1: stale pid file, no logs dir
shutil.rmtree("/app/service/logs", ignore_errors=True)
shutil.rmtree("/app/service/run", ignore_errors=True)
os.makedirs("/app/service/run")
open("/app/service/run/worker.pid", "w").write("999999\n")
t0 = time.time()
rc, out, err = run(["bash", "/app/service/start.sh"], timeout=10)
quick = time.time() - t0 < 5
ok = rc == 0 and quick and wait_ready()
ws = workers()
pid = read("/app/service/run/worker.pid").strip() if os.path.exists("/app/service/run/worker.pid") else ""
parts["stale_pidfile_started"] = ok and len(ws) == 1 and pid == str(ws[0]) and os.path.exists("/app/service/logs/worker.log")
# 2: running -> refuses
rc, out, err = run(["bash", "/app/service/start.sh"], timeout=10)
time.sleep(0.5)
parts["running_refused"] = rc == 1 and "already running" in out + err and len(workers()) == 1
# 3: no pid file at all, no run dir
for w in workers():
    os.kill(w, 9)
time.sleep(0.3)
shutil.rmtree("/app/service/run", ignore_errors=True)
rc, out, err = run(["bash", "/app/service/start.sh"], timeout=10)
ok = rc == 0 and wait_ready()
ws = workers()
pid = read("/app/service/run/worker.pid").strip() if os.path.exists("/app/service/run/worker.pid") else ""
parts["fresh_started"] = ok and len(ws) == 1 and pid == str(ws[0])
for w in workers():
    os.kill(w, 9)
done(parts)
