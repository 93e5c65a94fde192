#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
mkdir -p /app/layout && cd /app/layout && chmod 755 .
mkdir -p team/inbox drop private public
echo hello > public/index.txt
printf '#!/bin/sh\necho run\n' > team/run.sh
chmod 2770 team; chmod 1777 drop; chmod 700 private; chmod 2750 team/inbox; chmod 755 public
chmod 444 public/index.txt; chmod 750 team/run.sh
