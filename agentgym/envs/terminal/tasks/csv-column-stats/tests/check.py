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

import csv
import io
import tempfile
from decimal import Decimal
cases = json.loads(read("/tests/cases.json"))
ok = 0
for i, c in enumerate(cases):
    path = os.path.join(tempfile.mkdtemp(), f"data {i}.csv")
    open(path, "w").write(c["csv"])
    rows = list(csv.DictReader(io.StringIO(c["csv"])))
    rc, out, err = run(["bash", "/app/colstats.sh", path, c["col"]])
    if c["col"] not in rows[0]:
        good = rc == 2 and out.strip() == ""
    else:
        vals = [x[c["col"]] for x in rows]
        lo = min(vals, key=Decimal)
        hi = max(vals, key=Decimal)
        mean = sum(Decimal(v) for v in vals) / len(vals)
        exp = f"min={lo} max={hi} mean={mean:.2f}"
        alt = f"min={lo} max={hi} mean={float(mean):.2f}"
        alt2 = f"min={lo} max={hi} mean={sum(float(v) for v in vals) / len(vals):.2f}"
        good = rc == 0 and out.strip() in (exp, alt, alt2)
        print(exp, "|", out.strip())
    print("case", i, "ok" if good else "FAIL", err[-200:])
    ok += good
sys.exit(0 if ok == len(cases) else 1)
