#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/data
find . -type f -size +1000c | sed 's|^\./||' | LC_ALL=C sort > /app/large.txt
