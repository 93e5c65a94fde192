#!/bin/bash
# Oracle solution (runs as the agent, cwd /app).
set -euo pipefail
cat > /app/backup.sh <<'SH'
#!/bin/bash
# usage: backup.sh SRC DEST -- copy every *.txt file under SRC to DEST, keeping relative paths
if [ $# -ne 2 ]; then
  echo "usage: backup.sh SRC DEST" >&2
  exit 1
fi
SRC=$1
DEST=$2
mkdir -p -- "$DEST"
(cd -- "$SRC" && find . -type f -name '*.txt' -print0) | while IFS= read -r -d '' f; do
  mkdir -p -- "$DEST/$(dirname -- "$f")"
  cp -- "$SRC/$f" "$DEST/$f"
done
echo "backed up $(find "$DEST" -type f -name '*.txt' | wc -l) files"
SH
chmod 755 /app/backup.sh
