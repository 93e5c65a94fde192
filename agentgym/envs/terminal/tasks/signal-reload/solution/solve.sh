#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
sed -i 's/^level = info$/level = debug/' /app/svc/config.ini
# The daemon may still be starting on a busy machine: its PID file appears once its SIGHUP handler is set.
for i in $(seq 1 300); do [ -s /app/svc/daemon.pid ] && [ -f /app/svc/status.json ] && break; sleep 0.1; done
kill -HUP "$(cat /app/svc/daemon.pid)"
# Wait for the reload itself: a daemon that started after the edit already reports debug with 0 reloads.
for i in $(seq 1 300); do grep -Eq '"level": "debug", "reloads": [1-9]' /app/svc/status.json && break; sleep 0.1; done
