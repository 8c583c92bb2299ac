#!/usr/bin/env bash
# The main job: set up .venv, build a real teacher and distilled students from MiniLM-L6 on the
# Rotten Tomatoes corpus (cached after the first run), then gate the student against the teacher.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME="${HF_HOME:-$(mktemp -d)}"
.venv/bin/python examples/sentiment/prepare.py
set +e
.venv/bin/distill run suites/sentiment/suite.yaml \
  --report out/sentiment-report.json --markdown out/sentiment-report.md
status=$?
set -e
# 0 = the student passes its rubric, 1 = the gate caught a breach (both are a successful demo).
if [ "$status" -gt 1 ]; then exit "$status"; fi
echo "demo finished: gate exit status $status (0 pass, 1 fail); reports in out/"
