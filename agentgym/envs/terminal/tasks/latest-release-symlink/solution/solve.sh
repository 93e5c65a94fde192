#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app
vs=$(ls releases | sort -t. -k1,1n -k2,2n -k3,3n)
ln -sfn "releases/$(echo "$vs" | tail -n 1)" current
rm -f previous
ln -s "releases/$(echo "$vs" | tail -n 2 | head -n 1)" previous
