#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
awk 'BEGIN { RS = ""; FS = "\n" }
{ name = ""; email = "-"; st = ""
  for (i = 1; i <= NF; i++) {
    k = $i; sub(/:.*/, "", k); v = $i; sub(/^[^:]*: */, "", v)
    if (k == "Name") name = v; else if (k == "Email") email = v; else if (k == "Status") st = tolower(v)
  }
  if (st == "active") print name "\t" email }' /app/contacts.txt | LC_ALL=C sort > /app/active.tsv
