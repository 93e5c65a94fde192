#!/bin/bash
# usage: backup.sh SRC DEST -- copy every *.txt file under SRC to DEST, keeping relative paths
if [ $# -ne 2]; then
  echo "usage: backup.sh SRC DEST" >&2
  exit 1
fi
SRC=$1
DEST=$2
for f in $(cd $SRC && find . -name *.txt); do
  mkdir -p $DEST/$(dirname $f)
  cp $SRC/$f $DEST/$f
done
echo "backed up $(find $DEST -name '*.txt' | wc -l) files"
