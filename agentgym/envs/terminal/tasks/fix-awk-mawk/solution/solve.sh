#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/report.awk <<'AWK'
# report.awk: input lines "name, score" (blank lines and lines starting with # are ignored).
# Output: one line per distinct name (trimmed, lowercased): "<name> <total score>", sorted by name (byte order),
# then "TOTAL <sum of all scores>".
/^#/ || NF == 0 { next }
{
  split($0, f, ",")
  name = f[1]
  gsub(/^[ \t]+|[ \t]+$/, "", name)
  name = tolower(name)
  total[name] += f[2]
  all += f[2]
}
END {
  cmd = "LC_ALL=C sort"
  for (k in total) print k, total[k] | cmd
  close(cmd)
  print "TOTAL", all + 0
}
AWK
