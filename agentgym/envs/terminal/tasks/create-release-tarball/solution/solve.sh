#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
rm -rf /tmp/stage && mkdir -p /tmp/stage && cp -a /app/src /tmp/stage/myapp
cd /tmp/stage && tar --exclude='*.pyc' --exclude='__pycache__' --exclude='.git' -czf /app/release.tar.gz myapp
