set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
mkdir -p src && echo 'x' > src/app.py && c 'Initial'
mkdir -p build logs && echo junk > build/out.o && echo l > logs/run.log && echo k > logs/keep.log && echo 'SECRET=1' > .env
