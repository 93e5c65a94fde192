#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
awk -F, 'NR == FNR { if (FNR > 1) { c[$1] = $3; n[$3] += 0; t[$3] += 0 } next }
         FNR > 1 && ($1 in c) { n[c[$1]]++; t[c[$1]] += $2 }
         END { for (k in n) print k "," n[k] "," t[k] }' users.csv purchases.csv | LC_ALL=C sort > /tmp/rows
{ echo country,purchases,total; cat /tmp/rows; } > /app/by_country.csv
