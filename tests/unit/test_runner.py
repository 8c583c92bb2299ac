"""The run's sequence: the gate runs once and the baseline is read at most once, also under
``--update-baselines``; slice verdicts of an update run are those of a plain rerun; a slice
that fails while another of its checks errors says both.

On the tiny repository of ``tests/data/tinyrepo`` (fixed prediction files: the student is
wrong on six of the eight German examples), with a ``baseline_delta`` check on every slice
beside the tiny rubric's ``slice_gap``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import baseline, gate
from harness.options import Options
from harness.runner import run_suite

TINY = Path(__file__).resolve().parents[1] / "data" / "tinyrepo"
VS_BASELINE = ("  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, "
               "scope: slices}\n")


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(TINY, root)
    rubric = root / "rubrics" / "tiny.yaml"
    rubric.write_text(rubric.read_text("utf-8") + VS_BASELINE, "utf-8")
    return root / "suites" / "tiny.yaml"


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the gate decided a plan and how often a stored baseline was read."""
    seen = {"gate": 0, "load": 0}
    decide, load = gate.decide_checks, baseline.load_baseline

    def counting_decide(*args, **kwargs):
        seen["gate"] += 1
        return decide(*args, **kwargs)

    def counting_load(*args, **kwargs):
        seen["load"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(gate, "decide_checks", counting_decide)
    monkeypatch.setattr(baseline, "load_baseline", counting_load)
    return seen


def _verdicts(result) -> dict[str, str]:
    return {row.slice: row.verdict for row in result.slices}


def test_update_baselines_runs_the_gate_once_and_reads_no_baseline(suite: Path, counts) -> None:
    result = run_suite(suite, Options(cache_dir=None, update_baselines=True))
    assert counts == {"gate": 1, "load": 0}
    assert result.baseline["written"] == "written"
    assert (suite.parents[1] / "baselines" / "tiny.json").is_file()
    # The baseline checks compared with what was written: the student against itself.
    vs = [c for c in result.checks if c.criterion == "vs_baseline"]
    assert vs and all(c.verdict == "pass" and c.value == 0.0 for c in vs)


def test_a_plain_run_reads_the_baseline_once(suite: Path, counts) -> None:
    run_suite(suite, Options(cache_dir=None, update_baselines=True))
    counts.update(gate=0, load=0)
    run_suite(suite, Options(cache_dir=None))
    assert counts == {"gate": 1, "load": 1}


def test_slice_verdicts_of_the_update_run_equal_those_of_a_plain_rerun(suite: Path) -> None:
    written = run_suite(suite, Options(cache_dir=None, update_baselines=True))
    rerun = run_suite(suite, Options(cache_dir=None))
    assert _verdicts(written) == _verdicts(rerun)
    assert "error" not in _verdicts(written).values()
    assert _verdicts(written)["lang=de"] == "fail"  # slice_gap: six German answers wrong
    assert [c.verdict for c in written.checks] == [c.verdict for c in rerun.checks]
    assert written.baseline["student_fingerprint"] == rerun.baseline["student_fingerprint"]


def test_a_failing_slice_whose_baseline_check_errors_says_both(suite: Path) -> None:
    result = run_suite(suite, Options(cache_dir=None))  # no baseline yet: vs_baseline errors
    rows = {row.slice: row for row in result.slices}
    de = rows["lang=de"]
    assert de.verdict == "fail"
    assert de.errors == ("tiny::vs_baseline[lang=de]",)
    assert de.to_dict()["errors"] == ["tiny::vs_baseline[lang=de]"]
    # A slice whose other checks pass: the error is its verdict (nothing decided is worse).
    en = rows["lang=en"]
    assert en.verdict == "error" and en.errors == ()
    assert "errors" not in en.to_dict()
    from harness.report import build_report
    from harness.spec import validate_document

    doc = build_report([result])
    validate_document(doc, "report", "report.json")
    from harness.report.markdown import render_markdown
    from harness.report.terminal import suite_lines

    terminal = "\n".join(suite_lines(doc["suites"][0]))
    assert next(ln for ln in terminal.splitlines() if ln.startswith("lang=de")).rstrip() \
        .endswith("fail (+1 error)")
    assert "fail (+1 error)" in render_markdown(doc)
