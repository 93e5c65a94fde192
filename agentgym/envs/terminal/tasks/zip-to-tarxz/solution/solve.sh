#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
rm -rf /tmp/z && mkdir /tmp/z && cd /tmp/z && unzip -q /app/data.zip
tar -cJf /app/data.tar.xz bin lib README conf
