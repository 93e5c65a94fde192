#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
for i in $(seq 1 20); do
  pid=$(pgrep -f 'svc/holder.py' | head -n 1) && [ -n "$pid" ] && break
  sleep 0.2
done
fd=$(ls -l /proc/$pid/fd | grep 'ledger.csv' | awk '{print $9}')
cat "/proc/$pid/fd/$fd" > /app/ledger.csv
