#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
jq -s '.[0] * .[1]' config/base.json config/prod.json > config/merged.json
