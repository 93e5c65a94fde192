#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
awk '{t[$1] += $3} END {for (u in t) print u, t[u]}' /app/usage.txt | LC_ALL=C sort -k2,2nr -k1,1 > /app/totals.txt
