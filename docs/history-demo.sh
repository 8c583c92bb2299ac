#!/usr/bin/env bash
# A scripted series of five accepted releases of the tickets example (suites/tickets.yaml, on
# prediction files), in a scratch git repository: each release's student gets 7 more tickets
# wrong than the last (0.8 points of 900 examples), German ones first. The rubric gains a
# baseline margin against the current baseline (-0.01) and one against the launch pin (-0.02).
# Run from the repository root, after scripts/setup.sh:
#     bash docs/history-demo.sh [DIR]        # DIR: where the scratch repository goes
# It prints `distill history` (Markdown), writes the trend plot to DIR/trend.png, and compares
# the last release with the launch. docs/history.md shows its output.
set -euo pipefail
here=$(pwd)
distill="${DISTILL:-$here/.venv/bin/distill}"
py="${PYTHON:-$here/.venv/bin/python}"
demo="${1:-$(mktemp -d)/tickets-history}"
mkdir -p "$demo" && cd "$demo"
cp -r "$here/suites" "$here/rubrics" "$here/examples" . 2>/dev/null || true
rm -rf suites/sentiment examples/sentiment examples/g2p
mkdir -p baselines && printf '[project]\nname = "tickets-history"\n' > pyproject.toml
cat >> rubrics/tickets.yaml <<'YAML'
  - {name: vs_current, metric: accuracy, compare: baseline_delta, min: -0.01, scope: overall,
     decision: point}
  - {name: vs_launch, metric: accuracy, compare: baseline_delta, min: -0.02, scope: overall,
     decision: point, against: launch, owner: "@org/support-ml",
     playbook: docs/playbooks/slow-drift.md}
YAML
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
git init -q -b main && git add -A && git commit -q -m "tickets suite"
cp examples/tickets/student.jsonl student-0.jsonl
for k in 0 1 2 3 4; do
  # Release k: the launch student, wrong on 7k more tickets it used to get right
  # (the first correct German ones, then French) — fixed, chosen, no randomness.
  "$py" - "$k" <<'PY'
import json, sys
k = int(sys.argv[1])
gold = {r["id"]: r for r in map(json.loads, open("examples/tickets/eval.jsonl"))}
rows = [json.loads(l) for l in open("student-0.jsonl")]
right = [r for r in rows if r["label"] == gold[r["id"]]["label"]]
order = ([r for r in right if gold[r["id"]]["lang"] == "de"]
         + [r for r in right if gold[r["id"]]["lang"] == "fr"])
labels = ["billing", "bug", "account", "feature"]
for r in order[:7 * k]:
    r["label"] = labels[(labels.index(r["label"]) + 1) % 4]
for r in rows:
    r.pop("scores", None)  # every line or none: the flipped ones have no honest scores
with open("examples/tickets/student.jsonl", "w") as fh:
    fh.writelines(json.dumps(r) + "\n" for r in rows)
PY
  export GIT_AUTHOR_DATE="2026-0$((k + 1))-15T12:00:00Z" GIT_COMMITTER_DATE="2026-0$((k + 1))-15T12:00:00Z"
  "$distill" run suites/tickets.yaml --update-baselines --quiet --no-cache >/dev/null || true
  git add -A && git commit -q -m "release $k: accept the student"
  if [ "$k" = 0 ]; then
    "$distill" baseline pin tickets --as launch && git add -A && git commit -q -m "pin the launch"
  fi
done
unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
"$distill" history tickets --format markdown --plot trend.png
echo
"$distill" compare baselines/tickets@launch.json baselines/tickets.json || echo "(exit $?)"
echo
"$distill" run suites/tickets.yaml --markdown gate.md --quiet || echo "(exit $?)"
echo "demo repository: $demo"
