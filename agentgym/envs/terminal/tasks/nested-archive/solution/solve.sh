#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
mkdir -p /tmp/x && tar -xf /app/bundle.tar -C /tmp/x
cd /tmp/x && unzip -o -q payload/logs.zip && gunzip -c app.log.gz > /app/app.log
