#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
python3 - <<'PY'
src = open("/app/invoice.py").read()
head = src.split("import sys")[0]
body = '''import sys
from decimal import ROUND_HALF_UP, Decimal


def q(x):
    return x.quantize(Decimal("0.01"), ROUND_HALF_UP)


totals = {}
lines = open(sys.argv[1]).read().splitlines()
for line in lines[1:]:
    if not line.strip():
        continue
    customer, qty, price, disc = line.split(",")
    amount = Decimal(qty) * Decimal(price) * (100 - Decimal(disc)) / 100
    totals[customer] = totals.get(customer, Decimal(0)) + amount
for customer, total in sorted(totals.items()):
    print(f"{customer}: {q(total)}")
print(f"TOTAL: {q(sum(totals.values(), Decimal(0)))}")
'''
open("/app/invoice.py", "w").write(head + body)
PY
