#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/launch.sh <<'SH'
#!/bin/bash
n=$1
mkdir -p /app/out
for i in $(seq 1 "$n"); do
  python3 /app/worker.py "$i" &
done
wait
for i in $(seq 1 "$n"); do cat "/app/out/worker-$i.txt"; done > /app/out/summary.txt
SH
chmod 755 /app/launch.sh
