#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
sed -i -e 's/[ \t]*$//' -e 's/^#debug = false$/debug = true/' \
  -e '/^\[server\]/,/^\[/ s/^port *=.*/port = 8081/' /app/app.conf
