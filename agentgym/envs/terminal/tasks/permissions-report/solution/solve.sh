#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/tree
find . -mindepth 1 -exec stat -c '%a %n' {} + | sed 's| \./| |' | LC_ALL=C sort -k2 > /app/modes.txt
