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
cases = json.loads(read("/tests/cases.json"))
ok = 0
for i, c in enumerate(cases):
    p = os.path.join(tempfile.mkdtemp(), "scores.txt")
    open(p, "w").write(c)
    tot, allv = {}, 0
    for line in c.splitlines():
        if line.startswith("#") or not line.split():
            continue
        name, score = line.split(",", 1)
        name = name.strip(" \t").lower()
        tot[name] = tot.get(name, 0) + int(score)
        allv += int(score)
    exp = "".join(f"{k} {v}\n" for k, v in sorted(tot.items(), key=lambda kv: kv[0].encode())) + f"TOTAL {allv}\n"
    rc, out, err = run(["awk", "-f", "/app/report.awk", p])
    good = rc == 0 and out == exp
    print("case", i, "ok" if good else "FAIL", repr(out[-300:]), err[-300:])
    ok += good
sys.exit(0 if ok == len(cases) else 1)
