#!/usr/bin/env bash
# Build the shipped dataset of synthesized coding tasks in one command:
#
#   scripts/build_synth_dataset.sh [--out-dir DIR] [--workers N] [--max-tasks N] [--projects FILE]
#                                  [--dataset FILE] [--sample N] [-- MORE SYNTH OPTIONS]
#
# 1. synth: `agentgym tasks synth --projects FILE --out-dir DIR --max-per-operator 30 --pairs 3` over every
#    project of FILE
#    (NAME==VERSION lines: PyPI sdists that ship their tests), one worker process per project.
#    It is resumable: run the command again after an interruption and finished projects are
#    skipped (--retry-failed among MORE SYNTH OPTIONS reruns the failed ones). Every kept task was
#    graded by the coding grader (fix 1, base 0); add --check after -- to re-run each kept task's
#    tests too. DIR/yield.md is the table of
#    every project tried, kept or not and why; DIR/tasks.jsonl holds the full tasks.
# 2. pack: DIR/tasks.jsonl into the compact dataset FILE (a patch per task against its project's
#    sdist, which is downloaded once into $AGENTGYM_CACHE/sdists); every record is rebuilt and
#    sha256-checked before it is written. Prints the size against the full tasks.
# 3. sample: a random sample of --sample tasks stratified by project (DIR/sample.jsonl.gz), the
#    one CI validates: `agentgym tasks validate agentgym/CodeRepair-v0 --env-arg source=DIR/sample.jsonl.gz`.
#
# Defaults: --out-dir build/synth-dataset, --workers 2, --max-tasks 60 (per project),
# --projects benchmarks/synth_pypi_projects.txt, --dataset agentgym/envs/coding/synth_data/pypi.jsonl.xz,
# --sample 100. PYTHON (default .venv/bin/python, else python3) runs agentgym.
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir=build/synth-dataset
workers=2
max_tasks=60
projects=benchmarks/synth_pypi_projects.txt
dataset=agentgym/envs/coding/synth_data/pypi.jsonl.xz
sample=100
usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out-dir) out_dir=${2:?--out-dir needs a folder}; shift 2 ;;
    --workers) workers=${2:?--workers needs a number}; shift 2 ;;
    --max-tasks) max_tasks=${2:?--max-tasks needs a number}; shift 2 ;;
    --projects) projects=${2:?--projects needs a file}; shift 2 ;;
    --dataset) dataset=${2:?--dataset needs a file}; shift 2 ;;
    --sample) sample=${2:?--sample needs a number}; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; usage ;;
  esac
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
[ -f "$projects" ] || { echo "no projects file $projects (one NAME==VERSION per line)" >&2; exit 2; }

echo "== synth: $projects -> $out_dir ($workers workers, at most $max_tasks tasks per project)"
"$PYTHON" -c 'import sys; from agentgym.cli import main; sys.exit(main(sys.argv[1:]))' \
  tasks synth --projects "$projects" --out-dir "$out_dir" --workers "$workers" --max-tasks "$max_tasks" \
  --sandbox local --max-per-operator 30 --pairs 3 "$@"

echo "== pack: $out_dir/tasks.jsonl -> $dataset"
mkdir -p "$(dirname "$dataset")"
"$PYTHON" -m agentgym.envs.coding.dataset pack "$out_dir/tasks.jsonl" --out "$dataset" --status-dir "$out_dir/status"

echo "== sample: $sample tasks -> $out_dir/sample.jsonl.gz"
"$PYTHON" -m agentgym.envs.coding.dataset sample "$dataset" --n "$sample" --seed 0 --out "$out_dir/sample.jsonl.gz"

"$PYTHON" - "$dataset" <<'EOF'
import sys
from collections import defaultdict

from agentgym.envs.coding.dataset import read_records

splits = defaultdict(set)
count = defaultdict(int)
for r in read_records(sys.argv[1]):
    splits[r["project"]].add(r["split"])
    count[r["split"]] += 1
both = sorted(p for p, s in splits.items() if len(s) > 1)
if both:
    sys.exit(f"projects in more than one split: {', '.join(both)}")
total = sum(count.values())
print(f"{sys.argv[1]}: {total} tasks from {len(splits)} projects ({dict(count)}); no project in both splits")
if total < 1000 or len(splits) < 20:
    print("warning: the shipped dataset should hold at least 1,000 tasks from at least 20 projects", file=sys.stderr)
EOF
