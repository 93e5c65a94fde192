#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/repo
c=$(git log experimental --format=%H --grep='^Fix off-by-one in paginate$')
git -c user.name=Agent -c user.email=agent@example.com cherry-pick "$c"
