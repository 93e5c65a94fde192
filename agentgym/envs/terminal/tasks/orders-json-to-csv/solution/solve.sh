#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
python3 - <<'PY'
import json
from decimal import Decimal
orders = json.load(open("/app/orders.json"))
with open("/app/orders.csv", "w") as f:
    f.write("id,customer,items,total\n")
    for o in sorted(orders, key=lambda o: o["id"]):
        tot = sum(Decimal(str(it["price"])) * it["qty"] for it in o["items"])
        n = sum(it["qty"] for it in o["items"])
        f.write(f"{o['id']},{o['customer']['name']},{n},{tot.quantize(Decimal('0.01'))}\n")
PY
