#!/usr/bin/env bash
# The package as users install it — `pip install . pytest`, no extras: no pytest-xdist, no torch,
# no dev tools. Installing the plugin must never break a test run, and a predictions-file suite
# gates with the verdicts it has under the dev extra. Usage: .ci/plain_install.sh VENV_PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:?usage: .ci/plain_install.sh VENV_PYTHON}"
work="$(mktemp -d)"

echo "plain install: a plain test file runs with the plugin installed"
printf 'def test_ok():\n    assert 1 + 1 == 2\n' > "$work/test_plain.py"
(cd "$work" && "$PY" -m pytest -q -p no:cacheprovider test_plain.py)

echo "plain install: a predictions-file suite through pytest --distill-suite"
cp -r tests/data/tinyrepo "$work/repo"
set +e
(cd "$work/repo" && "$PY" -m pytest -q -p no:cacheprovider --distill-suite suites/tiny.yaml \
  --distill-report r.json)
status=$?
set -e
if [ "$status" -ne 1 ]; then
  echo "plain install: expected exit 1 (two checks of the tiny suite fail), got $status" >&2
  exit 1
fi
"$PY" - "$work/repo/r.json" <<'PYEOF'
import json
import sys

doc = json.load(open(sys.argv[1], encoding="utf-8"))
verdicts = {c["id"]: c["verdict"] for s in doc["suites"] for c in s["checks"]}
expected = {"tiny::quality_ratio[overall]": "pass", "tiny::flips[overall]": "pass",
            "tiny::slice_gap[lang=de]": "fail", "tiny::slice_gap[lang=en]": "pass",
            "tiny::slice_gap[has_negation=false]": "fail",
            "tiny::slice_gap[has_negation=true]": "pass",
            # 2 short examples: the gap breaches the threshold, n is below min_support 3
            "tiny::slice_gap[short]": "inconclusive"}
assert doc["verdict"] == "fail", doc["verdict"]
assert verdicts == expected, {i: (v, expected.get(i)) for i, v in verdicts.items()
                              if v != expected.get(i)} or sorted(verdicts)
print("plain install: verdicts as expected:", ", ".join(f"{i.split('::')[1]} {v}"
                                                        for i, v in sorted(verdicts.items())))
PYEOF
