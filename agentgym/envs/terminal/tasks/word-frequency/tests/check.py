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
from collections import Counter
cases = json.loads(read("/tests/cases.json"))
ok = 0
for c in cases:
    cnt = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", c["text"]))
    exp = "".join(f"{n} {w}\n" for w, n in sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0]))[: c["n"]])
    rc, out, err = run(["python3", "/app/wordfreq.py", str(c["n"])], inp=c["text"])
    good = rc == 0 and out.strip() == exp.strip()
    print("case", c["n"], "ok" if good else "FAIL", err[-300:])
    ok += good
sys.exit(0 if ok == len(cases) else 1)
