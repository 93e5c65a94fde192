set -e
export GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com
n=0
c() { n=$((n+1)); export GIT_AUTHOR_DATE="2024-01-01T10:00:$(printf %02d $n) +0000" GIT_COMMITTER_DATE="2024-01-01T10:00:$(printf %02d $n) +0000"; git add -A; git commit -q -m "$1"; }
mkdir -p repo && cd repo && git init -q -b main
mkdir -p docs && printf '# Pancakes\n\n- flour\n' > docs/recipe.md && echo readme > README && c 'Add recipe'
printf '# Pancakes\n\n- flour\n- 2 eggs\n- milk\n' > docs/recipe.md && c 'More ingredients'
echo 'v2' >> README && c 'Update readme'
printf '# Pancakes\n\n- flour\n- 2 eggs\n- 300 ml milk\n- pinch of salt\n\nMix and fry.\n' > docs/recipe.md && c 'Finish recipe'
git rm -q docs/recipe.md && c 'Remove old docs'
echo 'v3' >> README && c 'Readme v3'
