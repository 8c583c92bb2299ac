#!/usr/bin/env bash
# The generation demo: set up .venv, build a GPT-2 grapheme-to-phoneme teacher from scratch on
# the CMU Pronouncing Dictionary and distil smaller GPT-2 students on its greedy outputs
# (cached after the first run), then gate the student against the teacher.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME="${HF_HOME:-$(mktemp -d)}"
.venv/bin/python examples/g2p/prepare.py
set +e
.venv/bin/distill run suites/g2p/suite.yaml \
  --report out/g2p-report.json --markdown out/g2p-report.md
status=$?
set -e
# 0 = the student passes its rubric, 1 = the gate caught a breach (both are a successful demo).
if [ "$status" -gt 1 ]; then exit "$status"; fi
echo "demo finished: gate exit status $status (0 pass, 1 fail); reports in out/"
