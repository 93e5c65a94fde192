#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/repo
git log --reverse --format=%H -G '^TIMEOUT = 45$' -- settings.py | head -n 1 > /app/answer.txt
