#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
jq -r '[.warehouses[].items[]] | group_by(.sku)[] | select((map(.stock) | add) == 0) | .[0].sku' /app/inventory.json \
  | LC_ALL=C sort > /app/out_of_stock.txt
