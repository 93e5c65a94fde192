#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/bulk_rename.py <<'PY'
import os
import re
import sys

d, rx, rep = sys.argv[1:4]
files = sorted(f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))
ren = {f: re.sub(rx, rep, f) for f in files}
ren = {a: b for a, b in ren.items() if a != b}
targets = list(ren.values())
existing = set(os.listdir(d)) - set(ren)
if len(set(targets)) != len(targets) or any(t in existing for t in targets):
    print("collision, nothing renamed", file=sys.stderr)
    sys.exit(2)
tmp = {}
for a in ren:
    tmp[a] = a + ".__tmp_rename__"
    os.rename(os.path.join(d, a), os.path.join(d, tmp[a]))
for a, b in ren.items():
    os.rename(os.path.join(d, tmp[a]), os.path.join(d, b))
    print(f"{a} -> {b}")
PY
