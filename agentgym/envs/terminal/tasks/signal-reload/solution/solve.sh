#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
sed -i 's/^level = info$/level = debug/' /app/svc/config.ini
kill -HUP "$(cat /app/svc/daemon.pid)"
for i in $(seq 1 30); do grep -q '"level": "debug"' /app/svc/status.json && break; sleep 0.1; done
