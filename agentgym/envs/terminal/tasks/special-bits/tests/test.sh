#!/bin/bash
# Verifier: /tests/check.py decides (exit 0 = pass); the reward is written last.
set -u
mkdir -p /logs/verifier
echo 0 > /logs/verifier/reward.txt
cd /app || exit 0
# temporary files of the checker go to the (empty, writable) HOME
export TMPDIR="${HOME:-/tmp}"
out=$(timeout 50 python3 /tests/check.py)
rc=$?
printf '%s\n' "$out"
json=$(printf '%s\n' "$out" | sed -n 's/^REWARD_JSON //p' | tail -n 1)
if [ -n "$json" ]; then printf '%s\n' "$json" > /logs/verifier/reward.json; fi
if [ "$rc" -eq 0 ]; then echo 1 > /logs/verifier/reward.txt; else echo 0 > /logs/verifier/reward.txt; fi
