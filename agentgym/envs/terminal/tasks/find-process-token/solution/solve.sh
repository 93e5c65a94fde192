#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
ps -eo args | grep '^python3 .* [d]ata-sync ' | grep -o -- '--token=[^ ]*' | head -n 1 | cut -d= -f2 > /app/token.txt
