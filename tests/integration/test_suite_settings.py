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
from harness.results import Check, SuiteResult
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


def _by_lang(root: Path, min_support: int) -> None:
    path = root / SUITE
    path.write_text(path.read_text("utf-8").replace(
        "  - by: lang\n", f"  - by: lang\n    min_support: {min_support}\n"), "utf-8")


def _slice_gap(result: SuiteResult, slice_name: str) -> Check:
    return next(c for c in result.checks if c.id == f"tiny::slice_gap[{slice_name}]")


def test_a_by_slices_min_support_is_the_minimum_support_of_its_checks(tiny_copy: Path) -> None:
    # The student is wrong on six of the eight German rows (decision: point). With the rubric's
    # min_support raised to 20 the slice cannot be decided ...
    rubric = tiny_copy / RUBRIC
    rubric.write_text(rubric.read_text("utf-8").replace("min_support: 3", "min_support: 20"),
                      "utf-8")
    before = _run(tiny_copy)
    de = _slice_gap(before, "lang=de")
    assert de.verdict == "inconclusive" and "n=8 is below min_support 20" in de.message
    assert "min_support" not in de.to_dict()
    # ... while its by: entry's min_support 5 decides it: a breach on 8 >= 5 rows fails.
    _by_lang(tiny_copy, 5)
    after = _run(tiny_copy)
    de = _slice_gap(after, "lang=de")
    assert de.verdict == "fail" and de.n == 8 and de.to_dict()["min_support"] == 5
    assert not any(g.kind == "support" and g.slice == "lang=de" for g in after.coverage_gaps)
    # the other entries' slices keep their criterion's minimum support
    negation = _slice_gap(after, "has_negation=true")
    assert negation == _slice_gap(before, "has_negation=true")
    assert "min_support" not in negation.to_dict()


def test_by_values_below_the_entrys_min_support_make_no_slice_or_check(tiny_copy: Path) -> None:
    _distill(tiny_copy, n_de=18, n_en=2)
    _by_lang(tiny_copy, 10)  # German has 8 eval rows, English 16
    result = _run(tiny_copy)
    assert not any("lang=de" in c.slice for c in result.checks)
    assert _slice_gap(result, "lang=en").to_dict()["min_support"] == 10
    assert "lang=de" not in {row["slice"] for row in result.slices}
    # coverage still runs on the distillation data (its slices are not dropped there)
    assert "lang=en" in _distillation_gaps(result)


@pytest.mark.parametrize("enabled", [True, False])
def test_discovery_switched_off_searches_no_traffic_pockets(tiny_copy: Path,
                                                            enabled: bool) -> None:
    rows = [{"id": f"t{i:02d}", "text": f"traffic {i}", "lang": "de" if i % 2 else "en",
             "has_negation": False, "n_words": 3, "channel": "chat"} for i in range(12)]
    (tiny_copy / "data" / "traffic.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    for model in ("teacher", "student"):
        _append(tiny_copy, f"data/{model}.jsonl", "".join(
            json.dumps({"id": r["id"], "label": "pos", "scores": {"neg": 0.2, "pos": 0.8}}) + "\n"
            for r in rows))
    _append(tiny_copy, SUITE, "traffic_data:\n  path: ../data/traffic.jsonl\n  id: id\n"
                              "  input: text\n  features: [lang, has_negation, n_words, channel]\n"
                              f"discovery: {{enabled: {str(enabled).lower()}}}\n")
    _append(tiny_copy, RUBRIC, "  - {name: drift, metric: agreement, compare: teacher_delta, "
                               "min: -0.1, scope: traffic}\n")
    result = _run(tiny_copy)
    drift = {c.slice for c in result.checks if c.criterion == "drift"}
    assert {"traffic", "traffic:lang=de", "traffic:lang=en"} <= drift
    assert ("traffic:discovered" in drift) is enabled


def test_a_broken_distillation_file_fails_the_run_even_after_a_warm_one(
        tiny_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The coverage step is memoized under the distillation file's sha256: a run that finds it
    # never parses the file, so an edit that breaks the file must miss the memo and be reported.
    from harness.cli import main

    _distill(tiny_copy, n_de=18, n_en=2)
    args = ["run", SUITE, "--cache", str(tiny_copy / ".cache"), "--quiet",
            "--report", "out.json"]
    assert main(args) in (0, 1)
    assert "lang=en" in {g["slice"] for g in json.loads((tiny_copy / "out.json").read_text())
                         ["suites"][0]["coverage_gaps"] if g["kind"] == "distillation"}
    path = tiny_copy / "data" / "distill.jsonl"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[2] = '{"id": "d2", "text": \n'
    path.write_text("".join(lines), "utf-8")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "data/distill.jsonl" in err and "line 3" in err and "invalid JSON" in err
