set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
printf 'RETRIES = 3\nTIMEOUT = 30\nWORKERS = 2\n' > settings.py
c 'Initial settings'
printf 'RETRIES = 3\nTIMEOUT = 30\nWORKERS = 4\n' > settings.py
echo 'change 0' >> CHANGELOG
c 'Tune settings (0)'
printf 'RETRIES = 3\nTIMEOUT = 60\nWORKERS = 4\n' > settings.py
echo 'change 1' >> CHANGELOG
c 'Tune settings (1)'
printf 'RETRIES = 5\nTIMEOUT = 60\nWORKERS = 4\n' > settings.py
echo 'change 2' >> CHANGELOG
c 'Tune settings (2)'
printf 'RETRIES = 5\nTIMEOUT = 45\nWORKERS = 4\n' > settings.py
echo 'change 3' >> CHANGELOG
c 'Tune settings (3)'
printf 'RETRIES = 5\nTIMEOUT = 45\nWORKERS = 8\n' > settings.py
echo 'change 4' >> CHANGELOG
c 'Tune settings (4)'
printf 'RETRIES = 5\nTIMEOUT = 90\nWORKERS = 8\n' > settings.py
echo 'change 5' >> CHANGELOG
c 'Tune settings (5)'
printf 'RETRIES = 2\nTIMEOUT = 90\nWORKERS = 8\n' > settings.py
echo 'change 6' >> CHANGELOG
c 'Tune settings (6)'
printf 'RETRIES = 2\nTIMEOUT = 45\nWORKERS = 8\n' > settings.py
echo 'change 7' >> CHANGELOG
c 'Tune settings (7)'
printf 'RETRIES = 2\nTIMEOUT = 45\nWORKERS = 3\n' > settings.py
echo 'change 8' >> CHANGELOG
c 'Tune settings (8)'
