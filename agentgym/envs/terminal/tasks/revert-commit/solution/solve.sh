#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/repo
c=$(git log --format=%H --grep='^Change rounding to floor$')
git -c user.name=Agent -c user.email=agent@example.com revert --no-edit "$c"
