set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
printf 'def total(prices):\n    return round(sum(prices), 2)\n' > calc.py && echo 'print(1)' > main.py && c 'Add calc'
echo '# helpers' > helpers.py && c 'Add helpers'
printf 'import math\n\n\ndef total(prices):\n    return math.floor(sum(prices))\n' > calc.py && c 'Change rounding to floor'
echo 'print(2)' > main.py && c 'Update main'
echo 'def h(): pass' >> helpers.py && c 'Add h'
