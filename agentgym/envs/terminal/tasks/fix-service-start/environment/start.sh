#!/bin/bash
# Start the worker in the background unless it is already running.
PIDFILE=/app/service/run/worker.pid
if [ -f "$PIDFILE" ]; then
  echo "already running"
  exit 1
fi
nohup python3 /app/service/worker.py > /app/service/logs/worker.log 2>&1 &
echo $! > $PIDFILE
