#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/service/start.sh <<'SH'
#!/bin/bash
# Start the worker in the background unless it is already running.
PIDFILE=/app/service/run/worker.pid
if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "already running"
    exit 1
  fi
  rm -f "$PIDFILE"
fi
mkdir -p /app/service/run /app/service/logs
nohup python3 /app/service/worker.py > /app/service/logs/worker.log 2>&1 < /dev/null &
echo $! > "$PIDFILE"
exit 0
SH
chmod 755 /app/service/start.sh
