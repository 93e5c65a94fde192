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
from decimal import ROUND_HALF_UP, Decimal
cases = json.loads(read("/tests/cases.json"))
ok = 0
for i, c in enumerate(cases):
    p = os.path.join(tempfile.mkdtemp(), "inv.csv")
    open(p, "w").write(c)
    tot = {}
    for row in csv.DictReader(io.StringIO(c)):
        a = Decimal(row["quantity"]) * Decimal(row["unit_price"]) * (100 - Decimal(row["discount_percent"])) / 100
        tot[row["customer"]] = tot.get(row["customer"], 0) + a
    q = lambda x: Decimal(x).quantize(Decimal("0.01"), ROUND_HALF_UP)
    exp = "".join(f"{k}: {q(v)}\n" for k, v in sorted(tot.items())) + f"TOTAL: {q(sum(tot.values()))}\n"
    rc, out, err = run(["python3", "/app/invoice.py", p])
    good = rc == 0 and out.strip() == exp.strip()
    print("case", i, "ok" if good else "FAIL", out, err[-300:])
    ok += good
sys.exit(0 if ok == len(cases) else 1)
