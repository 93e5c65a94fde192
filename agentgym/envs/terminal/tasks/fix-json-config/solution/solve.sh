#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/config.json <<'JSON'
{
  "name": "billing",
  "server": {
    "port": 8443,
    "hosts": ["a.internal", "b.internal"]
  },
  "debug": false,
  "limits": {"retries": 3, "timeout": 2.5}
}
JSON
