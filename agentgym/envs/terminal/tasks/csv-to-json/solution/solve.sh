#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
python3 - <<'PY'
import csv, json
with open("/app/people.csv", newline="") as f:
    rows = list(csv.DictReader(f))
for row in rows:
    row["age"] = int(row["age"])
with open("/app/people.json", "w") as f:
    json.dump(rows, f, indent=2)
PY
