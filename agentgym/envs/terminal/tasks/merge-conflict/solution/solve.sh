#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cd /app/repo
git checkout -q main
git -c user.name=Agent -c user.email=agent@example.com merge --no-edit feature/shout || true
printf 'def greet(name):\n    return "HI, " + name.upper() + "!"\n' > greet.py
git add greet.py
git -c user.name=Agent -c user.email=agent@example.com commit -q --no-edit
