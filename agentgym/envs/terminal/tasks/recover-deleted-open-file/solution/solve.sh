#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
# The holder may still be starting on a busy machine: wait until it holds the (deleted) ledger open.
fd=""
for i in $(seq 1 300); do
  pid=$(pgrep -f 'svc/holder.py' | head -n 1 || true)
  if [ -n "$pid" ]; then
    fd=$(ls -l "/proc/$pid/fd" 2>/dev/null | grep 'ledger.csv' | awk '{print $9}' || true)
    [ -n "$fd" ] && break
  fi
  sleep 0.1
done
cat "/proc/$pid/fd/$fd" > /app/ledger.csv
