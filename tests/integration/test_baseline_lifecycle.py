"""The baseline lifecycle through the real plugin, in the spirit of pytest-regressions'
``check_regression_fixture_workflow``: missing → error; update → written; rerun → pass;
student degraded → fail naming the flipped ids; update → pass; an unchanged rewrite keeps the
bytes; a corrupt file → a clear error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

LABELS = ("fresh", "rotten")
N = 60
TEACHER_WRONG = {"rt-7", "rt-31"}
STUDENT_WRONG = {"rt-3", "rt-12", "rt-44"}
#: What the degraded student newly gets wrong: the negative flips against the baseline.
FLIPPED = ("rt-5", "rt-20", "rt-33")

SUITE = """\
schema_version: 1
name: s
version: "1"
task: classification
labels: [fresh, rotten]
data: {path: ../data/reviews.jsonl, label: label, features: [source]}
teacher: {type: predictions, path: ../preds/teacher.jsonl}
student: {type: predictions, path: ../preds/student.jsonl}
rubric: ../rubrics/r.yaml
"""

RUBRIC = """\
schema_version: 1
id: r
version: 1
criteria:
  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, scope: overall,
     decision: point}
"""


def _gold(i: int) -> str:
    return LABELS[i % 2]


def _predictions(wrong: set[str]) -> str:
    rows = []
    for i in range(1, N + 1):
        label = _gold(i)
        if f"rt-{i}" in wrong:
            label = LABELS[1 - LABELS.index(label)]
        rows.append(json.dumps({"id": f"rt-{i}", "label": label}))
    return "\n".join(rows) + "\n"


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    root = pytester.path
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    for folder in ("suites", "rubrics", "data", "preds"):
        (root / folder).mkdir()
    (root / "suites" / "s.yaml").write_text(SUITE, encoding="utf-8")
    (root / "rubrics" / "r.yaml").write_text(RUBRIC, encoding="utf-8")
    rows = [{"id": f"rt-{i}", "text": f"review number {i}", "label": _gold(i),
             "source": "plot" if i % 3 == 0 else "acting"} for i in range(1, N + 1)]
    (root / "data" / "reviews.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "preds" / "teacher.jsonl").write_text(_predictions(TEACHER_WRONG), encoding="utf-8")
    (root / "preds" / "student.jsonl").write_text(_predictions(STUDENT_WRONG), encoding="utf-8")
    return root


def _run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    return pytester.runpytest("--distill-suite", "suites/s.yaml", "--distill-no-cache", *extra)


def test_baseline_lifecycle(pytester: pytest.Pytester, repo: Path) -> None:
    baseline = repo / "baselines" / "s.json"

    # 1. No baseline: the vs_baseline item errors or fails, saying how to write one.
    result = _run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*vs_baseline*"])
    result.stdout.fnmatch_lines(["*no baseline at baselines/s.json*--distill-update-baselines*"])
    assert not baseline.exists()

    # 2. Update: the baseline is written and the run passes.
    result = _run(pytester, "--distill-update-baselines")
    assert result.ret == 0, result.stdout.str()
    assert baseline.is_file()
    written = baseline.read_bytes()
    assert json.loads(written)["outcomes"]["by_id"]["rt-3"] != _gold(3)

    # 3. Rerun without updating: pass.
    result = _run(pytester)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)

    # 4. A degraded student: fail, naming the negative flips against the baseline.
    (repo / "preds" / "student.jsonl").write_text(
        _predictions(STUDENT_WRONG | set(FLIPPED)), encoding="utf-8")
    result = _run(pytester)
    assert result.ret == 1
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "(student - baseline)" in out
    for ex_id in FLIPPED:
        assert ex_id in out
    assert baseline.read_bytes() == written  # a failing run never rewrites the baseline

    # 5. Accept the new student: written, then pass.
    result = _run(pytester, "--distill-update-baselines")
    assert result.ret == 0, result.stdout.str()
    updated = baseline.read_bytes()
    assert updated != written
    result = _run(pytester)
    assert result.ret == 0, result.stdout.str()

    # 6. An update with nothing changed keeps the file's bytes and its mtime.
    mtime = baseline.stat().st_mtime_ns
    result = _run(pytester, "--distill-update-baselines")
    assert result.ret == 0, result.stdout.str()
    assert baseline.read_bytes() == updated
    assert baseline.stat().st_mtime_ns == mtime

    # 7. A hand-broken file: a clear error naming the file (never a pass).
    baseline.write_text(updated.decode("utf-8").replace('"rt-4": "fresh"', '"rt-4": "meh"'),
                        encoding="utf-8")
    result = _run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*baselines/s.json: outcomes.by_id.rt-4: label 'meh' is not one of the suite's labels*"])
    result.stdout.fnmatch_lines(["*fix or delete the file and run with --distill-update-baselines*"])


def test_stale_baseline_errors_with_what_changed(pytester: pytest.Pytester, repo: Path) -> None:
    assert _run(pytester, "--distill-update-baselines").ret == 0
    suite = repo / "suites" / "s.yaml"
    suite.write_text(suite.read_text("utf-8").replace('version: "1"', 'version: "2"'),
                     encoding="utf-8")
    result = _run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*baselines/s.json: stale baseline: suite version '1' → '2'*"])
    result.stdout.fnmatch_lines(["*run with --distill-update-baselines to refresh it*"])
