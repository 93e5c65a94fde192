#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/site
chmod 755 .
find . -path ./private -prune -o -type d -exec chmod 755 {} +
find . -path ./private -prune -o -type f -exec chmod 644 {} +
find . -path ./private -prune -o -type f -name '*.cgi' -exec chmod 755 {} +
find private -type d -exec chmod 700 {} +
find private -type f -exec chmod 600 {} +
