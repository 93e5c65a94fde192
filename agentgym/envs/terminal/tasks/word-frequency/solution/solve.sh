#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/wordfreq.py <<'PY'
import re
import sys
from collections import Counter

n = int(sys.argv[1])
cnt = Counter(w.lower() for w in re.findall(r"[A-Za-z]+", sys.stdin.read()))
for w, c in sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0]))[:n]:
    print(c, w)
PY
