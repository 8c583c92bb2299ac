"""The printed interval is the one the verdict uses (DESIGN, "Verdicts"), through the plugin.

By default a check's CI is two-sided at 1 - 2 alpha, so it excludes the threshold exactly
when the one-sided test rejects at alpha; a rubric that sets another ``confidence`` gets a
note in the terminal and the reports (not a Python warning, which a user's ``-W error`` or
``filterwarnings = error`` would turn into failures: the runs below use ``-W error``), and
the reports and the tables label the level.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from harness.spec import load_schema

FLAGS = ("-p", "no:cacheprovider", "--distill-no-cache", "-W", "error")
NOTE = "the printed interval is not the one the verdict uses"


def gate(pytester: pytest.Pytester, tiny_repo, settings: str) -> tuple[pytest.RunResult, dict]:
    tiny_repo.replace("rubrics/tiny.yaml", "defaults: {min_support: 3, decision: point}",
                      f"defaults: {{min_support: 3, decision: significant{settings}}}")
    result = pytester.runpytest(*FLAGS, "--distill-suite", "suites/tiny.yaml",
                                "--distill-report", "r.json", "--distill-markdown", "r.md")
    report = json.loads((tiny_repo / "r.json").read_text("utf-8"))
    jsonschema.validate(report, load_schema("report"))
    return result, report["suites"][0]


def test_the_default_interval_is_the_one_sided_tests_and_agrees_with_the_verdict(
        pytester, tiny_repo):
    result, suite = gate(pytester, tiny_repo, "")
    text = result.stdout.str()
    assert NOTE not in text and suite["notes"] == []
    tested = [c for c in suite["checks"] if c["ci"] is not None]
    assert tested and all(c["confidence"] == pytest.approx(0.90) for c in tested)
    for c in tested:
        bound, threshold = next(iter(c["threshold"].items()))
        outside = threshold > c["ci"][1] if bound == "min" else threshold < c["ci"][0]
        # before BH (q): the 90% interval excludes the threshold exactly when p < alpha 0.05
        assert outside == (c["p_value"] < 0.05), c
    assert any(c["p_value"] < 0.05 for c in tested)  # (lang=de: 0.017, its CI excludes -0.05)
    assert all(row["confidence"] == pytest.approx(0.90) for row in suite["slices"])
    result.stdout.fnmatch_lines(["slice*n*teacher*student*delta*90% CI*verdict*"])
    # the check the data cannot decide after BH says which interval it prints
    result.stdout.fnmatch_lines(["*slice_gap[[]lang=de[]]: accuracy (student - teacher) = "
                                 "-0.7500, 90% CI [[]*"])
    assert "| 90% CI |" in (tiny_repo / "r.md").read_text("utf-8")


def test_another_confidence_is_noted_in_the_terminal_and_the_report(pytester, tiny_repo):
    result, suite = gate(pytester, tiny_repo, ", confidence: 0.95")
    text = result.stdout.str()
    (note,) = suite["notes"]
    assert note.startswith("rubrics/tiny.yaml: confidence 0.95 with alpha 0.05 (")
    assert NOTE in note and "the 90% interval" in note
    assert f"note: {note}" in text
    assert NOTE in (tiny_repo / "r.md").read_text("utf-8")
    assert all(c["confidence"] == 0.95 for c in suite["checks"] if c["ci"] is not None)
    result.stdout.fnmatch_lines(["slice*n*teacher*student*delta*95% CI*verdict*"])
    # a note, not a warning: under -W error every item still passes (lang=de is inconclusive
    # after BH, as with the default confidence)
    result.assert_outcomes(passed=7)
