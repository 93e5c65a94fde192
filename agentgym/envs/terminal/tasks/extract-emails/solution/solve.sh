#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat docs/*.txt | grep -oE '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}' | tr 'A-Z' 'a-z' | LC_ALL=C sort -u > /app/emails.txt
