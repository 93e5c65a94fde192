#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/scans
i=0
for n in $(ls scan_*.txt | sed 's/^scan_//; s/\.txt$//' | sort -n); do
  i=$((i + 1))
  mv "scan_$n.txt" "$(printf 'page-%03d.txt' "$i")"
done
