#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/repo
c=$(git log --format=%H -n 1 --diff-filter=D -- docs/recipe.md)
git checkout "$c^" -- docs/recipe.md
