#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/colstats.sh <<'SH'
#!/bin/bash
file=$1 col=$2
idx=$(head -n 1 "$file" | tr ',' '\n' | grep -n -x -F -- "$col" | head -n 1 | cut -d: -f1)
if [ -z "$idx" ]; then echo "no such column: $col" >&2; exit 2; fi
awk -F, -v i="$idx" 'NR > 1 { v = $i; if (n == 0 || v + 0 < mn + 0) mn = v; if (n == 0 || v + 0 > mx + 0) mx = v; s += v; n++ }
  END { printf "min=%s max=%s mean=%.2f\n", mn, mx, s / n }' "$file"
SH
chmod 755 /app/colstats.sh
