#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/blobs
for f in blob*; do
  t=$(file -b "$f")
  case "$t" in
    gzip*) e=gz ;; bzip2*) e=bz2 ;; XZ*) e=xz ;; Zip*) e=zip ;; *tar\ archive*) e=tar ;; *) e=txt ;;
  esac
  mv "$f" "$f.$e"
done
