#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/repo/.gitignore <<'GI'
*.log
!keep.log
/build/
.env
node_modules/
GI
