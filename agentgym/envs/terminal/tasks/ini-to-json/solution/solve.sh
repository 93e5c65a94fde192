#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/ini2json.py <<'PY'
import json
import sys

out, sec = {}, None
for line in sys.stdin:
    s = line.strip()
    if not s or s[0] in ";#":
        continue
    if s.startswith("[") and s.endswith("]"):
        sec = s[1:-1]
        out.setdefault(sec, {})
    elif "=" in s:
        k, v = s.split("=", 1)
        out.setdefault(sec, {})[k.strip()] = v.strip()
print(json.dumps(out))
PY
