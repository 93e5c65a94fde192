#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/archives
unzip -o -q backup-d.zip -d /tmp/d
m=$(cd /tmp/d && grep -rl '^API_TOKEN=' . | sed 's|^\./||')
echo "backup-d.zip:$m" > /app/found.txt
sed -n 's/^API_TOKEN=//p' "/tmp/d/$m" > /app/token.txt
