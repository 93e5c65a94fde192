set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
printf 'def paginate(items, page, size):\n    start = page * size\n    return items[start:start + size + 1]\n' > pagination.py && c 'Add pagination'
git checkout -q -b experimental
echo 'EXPERIMENT = True' > flags.py && c 'Add experiment flag'
printf 'def paginate(items, page, size):\n    start = page * size\n    return items[start:start + size]\n' > pagination.py && c 'Fix off-by-one in paginate'
echo 'def fancy(): pass' > fancy.py && c 'Fancy feature'
git checkout -q main
echo 'docs' > README && c 'Docs'
