#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/shared
find . -type f -perm -o+w | sed 's|^\./||' | LC_ALL=C sort > /app/world_writable.txt
while IFS= read -r f; do chmod o-w "$f"; done < /app/world_writable.txt
