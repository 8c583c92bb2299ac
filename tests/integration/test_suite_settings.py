"""Suite settings reach the steps they set: ``coverage``, ``discovery`` and ``by:`` slices.

Each test runs the tiny repository (fixed prediction files) with one setting changed and
checks the report moves the way the setting says, so a setting parsed but not passed on fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.options import Options
from harness.results import SuiteResult
from harness.runner import run_suite
from harness.spec import load_suite

RUBRIC = "rubrics/tiny.yaml"
SUITE = "suites/tiny.yaml"


def _append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(path.read_text("utf-8") + text, "utf-8")


def _distill(root: Path, n_de: int, n_en: int) -> None:
    """A distillation set of ``n_de`` German and ``n_en`` English rows (the eval set is 8:16)."""
    rows = [{"id": f"d{i}", "text": f"training text {i}", "lang": lang, "has_negation": False,
             "n_words": 3, "channel": "chat"}
            for i, lang in enumerate(["de"] * n_de + ["en"] * n_en)]
    (root / "data" / "distill.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    _append(root, SUITE, "distillation_data:\n  path: ../data/distill.jsonl\n  id: id\n"
                         "  input: text\n  features: [lang, has_negation, n_words, channel]\n")


def _run(root: Path) -> SuiteResult:
    return run_suite(root / SUITE, Options(cache_dir=None))


def _distillation_gaps(result: SuiteResult) -> set[str]:
    return {g.slice for g in result.coverage_gaps if g.kind == "distillation"}


@pytest.mark.parametrize(("setting", "gap"), [("", True), ("coverage: {rare_share: 0.1}\n", False)])
def test_coverage_rare_share_reaches_the_distillation_gaps(tiny_copy: Path, setting: str,
                                                           gap: bool) -> None:
    # English is 16/24 of the eval set and 2/20 of the distillation set: a distill/eval share
    # ratio of 0.15, rare under the default share 0.2, not under 0.1.
    _distill(tiny_copy, n_de=18, n_en=2)
    _append(tiny_copy, SUITE, setting)
    assert ("lang=en" in _distillation_gaps(_run(tiny_copy))) is gap


def test_coverage_switched_off_skips_the_analysis_and_errors_its_metric(tiny_copy: Path) -> None:
    _distill(tiny_copy, n_de=18, n_en=2)
    _append(tiny_copy, SUITE, "coverage: {enabled: false}\n")
    _append(tiny_copy, RUBRIC, "  - {name: covered, metric: uncovered_fraction, compare: value, "
                               "max: 0.5, scope: overall}\n")
    result = _run(tiny_copy)
    assert result.coverage == {"enabled": False}
    assert not {g.kind for g in result.coverage_gaps} & {"distillation", "embedding"}
    (check,) = [c for c in result.checks if c.criterion == "covered"]
    assert check.verdict == "error"
    assert "coverage.enabled: false" in check.message and "suites/tiny.yaml" in check.message


def test_coverage_on_by_default_reports_its_summary(tiny_copy: Path) -> None:
    _distill(tiny_copy, n_de=18, n_en=2)
    result = _run(tiny_copy)
    assert "uncovered_fraction" in result.coverage
    assert "lang=en" in _distillation_gaps(result)


POCKETS = ("  - {name: pockets, metric: accuracy, compare: teacher_delta, min: -0.05, "
           "scope: discovered}\n")


def test_a_discovered_criterion_in_a_suite_without_discovery_is_refused_at_load(
        tiny_copy: Path) -> None:
    _append(tiny_copy, RUBRIC, POCKETS)
    load_suite(tiny_copy / SUITE)  # the search on: fine
    _append(tiny_copy, SUITE, "discovery: {enabled: false}\n")
    with pytest.raises(SpecError) as err:
        load_suite(tiny_copy / SUITE)
    assert str(err.value) == (
        "rubrics/tiny.yaml: criteria[3].scope: criterion 'pockets' has scope: discovered, but "
        "the suite suites/tiny.yaml switches the pocket search off (discovery.enabled: false)")
