#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
awk '!seen[$0]++' /app/words.txt > /app/unique.txt
