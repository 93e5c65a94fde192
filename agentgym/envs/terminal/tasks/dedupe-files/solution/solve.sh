#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/photos
: > /app/removed.txt
find . -type f | sed 's|^\./||' | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"
done | awk 'seen[$1]++ { sub(/^[^ ]+ /, ""); print }' > /tmp/dups
while IFS= read -r f; do rm -f -- "$f"; done < /tmp/dups
LC_ALL=C sort /tmp/dups > /app/removed.txt
