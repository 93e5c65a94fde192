#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/rotate.sh <<'SH'
#!/bin/bash
dir=$1 keep=$2
cd "$dir" || exit 1
ls | grep -E '^backup-[0-9]{8}\.tar\.gz$' | LC_ALL=C sort -r | tail -n +$((keep + 1)) | while IFS= read -r f; do
  rm -f -- "$f"
done
exit 0
SH
chmod 755 /app/rotate.sh
