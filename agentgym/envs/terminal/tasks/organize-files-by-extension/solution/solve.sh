#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/inbox
for f in *; do
  [ -f "$f" ] || continue
  case "$f" in
    *.*) e=$(printf '%s' "${f##*.}" | tr 'A-Z' 'a-z') ;;
    *) e=noext ;;
  esac
  mkdir -p "/app/sorted/$e"
  mv -- "$f" "/app/sorted/$e/"
done
