set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
printf 'def greet(name):\n    return "Hello, " + name\n' > greet.py && echo 1.0 > VERSION && c 'Initial'
git checkout -q -b feature/shout
printf 'def greet(name):\n    return "HELLO, " + name.upper() + "!"\n' > greet.py && c 'Shout greetings'
echo 'shout docs' > SHOUT.md && c 'Document shouting'
git checkout -q main
printf 'def greet(name):\n    return "Hi, " + name\n' > greet.py && c 'Friendlier greeting'
echo 1.1 > VERSION && c 'Bump version'
