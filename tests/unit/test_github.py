"""GitHub Actions output: annotation lines, their targets, escaping, the job summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.report import github
from harness.report.github import (
    escape_data,
    escape_property,
    in_github_actions,
    write_step_summary,
)
from harness.results import Check, ModelInfo, SuiteResult

RUBRIC = {"id": "sentiment-gate", "version": 4, "path": "rubrics/sentiment.yaml",
          "lines": {"quality_ratio": 5, "slice_gap": 7, "vs_baseline": 10, "speed": 11}}


def check(criterion: str, verdict: str, *, slice: str = "overall", compare: str = "teacher_delta",
          message: str = "", examples: tuple[str, ...] = (), suite_name: str = "sentiment") -> Check:
    item = criterion if slice == "overall" else f"{criterion}[{slice}]"
    return Check(id=f"{suite_name}::{item}", criterion=criterion, scope="slices", slice=slice,
                 metric="accuracy", compare=compare, value=-0.083, ci=(-0.121, -0.046), n=212,
                 threshold={"min": -0.05}, verdict=verdict, message=message, examples=examples)


def suite(*checks: Check, rubric: dict[str, Any] | None = None,
          baseline: dict[str, Any] | None = None, name: str = "sentiment") -> SuiteResult:
    model = ModelInfo(role="teacher", fingerprint="f" * 64, params=10, bytes=40, type="transformers")
    return SuiteResult(name=name, version="3", task="classification", path=f"suites/{name}.yaml",
                       n=1200, data_sha256="d" * 64, rubric=dict(RUBRIC if rubric is None else rubric),
                       teacher=model, student=model, checks=list(checks),
                       baseline={"path": f"baselines/{name}.json"} if baseline is None else baseline)


def test_failing_check_points_at_its_rubric_criterion() -> None:
    result = suite(check("slice_gap", "fail", slice="source=plot",
                         message="accuracy (student - teacher) = -0.083 -> breaches the threshold"))
    assert github.annotations([result]) == [
        "::error file=rubrics/sentiment.yaml,line=7,title=distill sentiment::"
        "slice_gap[source=plot] fail: accuracy (student - teacher) = -0.083 -> breaches the threshold"
    ]


def test_passing_checks_are_not_annotated() -> None:
    assert github.annotations([suite(check("slice_gap", "pass"), check("quality_ratio", "pass"))]) == []
    assert github.annotations([]) == []


@pytest.mark.parametrize(("verdict", "strict", "level"), [
    ("fail", False, "error"),
    ("error", False, "error"),
    ("warn", False, "warning"),
    ("warn", True, "warning"),
    ("inconclusive", False, "warning"),
    ("inconclusive", True, "error"),
])
def test_verdict_decides_the_command(verdict: str, strict: bool, level: str) -> None:
    (line,) = github.annotations([suite(check("slice_gap", verdict))], strict=strict)
    assert line.startswith(f"::{level} file=rubrics/sentiment.yaml,line=7,")


def test_baseline_checks_that_fail_or_error_point_at_the_baseline_file() -> None:
    result = suite(
        check("vs_baseline", "error", compare="baseline_delta", message="no baseline"),
        check("vs_baseline", "fail", slice="source=plot", compare="baseline_ratio"),
        check("vs_baseline", "inconclusive", slice="source=news", compare="baseline_delta"),
    )
    lines = github.annotations([result])
    assert [line.split("::")[1] for line in lines] == [
        "error file=baselines/sentiment.json,line=1,title=distill sentiment",
        "error file=baselines/sentiment.json,line=1,title=distill sentiment",
        "warning file=rubrics/sentiment.yaml,line=10,title=distill sentiment",
    ]


def test_baseline_check_without_a_baseline_file_points_at_the_rubric() -> None:
    no_baseline = suite(check("vs_baseline", "error", compare="baseline_delta"), baseline={})
    (line,) = github.annotations([no_baseline])
    assert line.startswith("::error file=rubrics/sentiment.yaml,line=10,")


def test_unknown_line_names_the_file_only_and_no_rubric_path_names_the_suite() -> None:
    no_line = suite(check("pockets", "fail"))
    assert github.annotations([no_line])[0].startswith("::error file=rubrics/sentiment.yaml,title=")
    no_rubric = suite(check("slice_gap", "fail"), rubric={"id": "g", "version": 1})
    assert github.annotations([no_rubric])[0].startswith("::error file=suites/sentiment.yaml,title=")


def test_errors_come_before_warnings_across_suites() -> None:
    first = suite(check("speed", "warn"), check("slice_gap", "fail", slice="source=plot"))
    second = suite(check("quality_ratio", "error", suite_name="topics"), name="topics")
    lines = github.annotations([first, second])
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::error", "::warning"]
    assert "title=distill sentiment::slice_gap[source=plot] fail" in lines[0]
    assert "title=distill topics::quality_ratio error" in lines[1]
    assert "line=11" in lines[2]


def test_examples_follow_the_message_on_their_own_line() -> None:
    (line,) = github.annotations([suite(check("slice_gap", "fail", message="m", examples=("r-17", "r-90")))])
    assert line.endswith("::slice_gap fail: m%0Aexamples: r-17, r-90")


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("100% sure\r\nnext: a,b") == "100%25 sure%0D%0Anext: a,b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    weird = suite(check("slice_gap", "fail", slice="title=a,b", message="50%\ndrop: big"),
                  rubric={**RUBRIC, "path": "rubrics/odd,name:x.yaml"}, name="s")
    (line,) = github.annotations([weird])
    assert line == ("::error file=rubrics/odd%2Cname%3Ax.yaml,line=7,title=distill s::"
                    "sentiment::slice_gap[title=a,b] fail: 50%25%0Adrop: big")
    # one physical line, whatever the message held
    assert "\n" not in line and "\r" not in line


def test_in_github_actions_reads_the_variable() -> None:
    assert in_github_actions({"GITHUB_ACTIONS": "true"})
    assert not in_github_actions({"GITHUB_ACTIONS": "false"})
    assert not in_github_actions({})


def test_in_github_actions_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert in_github_actions()
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert not in_github_actions()


def test_summary_is_appended_where_the_variable_points(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("## an earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert write_step_summary("# distill: FAIL\n\n| check | verdict |") == summary
    assert write_step_summary("second report\n") == summary
    assert summary.read_text(encoding="utf-8") == (
        "## an earlier step\n# distill: FAIL\n\n| check | verdict |\nsecond report\n")


def test_summary_creates_the_file_when_missing(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert write_step_summary("ok ✓", {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert summary.read_text(encoding="utf-8") == "ok ✓\n"


@pytest.mark.parametrize("environ", [{}, {"GITHUB_STEP_SUMMARY": ""}])
def test_nothing_written_without_the_variable(
        environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert write_step_summary("# report", environ) is None
    assert write_step_summary("# report") is None
    assert list(tmp_path.iterdir()) == []


def test_summary_past_the_limit_is_cut_at_a_line_with_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github, "SUMMARY_LIMIT_BYTES", 200)
    summary = tmp_path / "summary.md"
    summary.write_text("x" * 50 + "\n", encoding="utf-8")
    write_step_summary("".join(f"row {i:03d}\n" for i in range(100)), {"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 200
    assert text.startswith("x" * 50 + "\nrow 000\n")
    assert text.endswith("\n> Report truncated to fit GitHub's 1 MiB job summary; see the JSON report.\n")
    assert "row 099" not in text


def test_report_dicts_give_the_same_lines_as_results() -> None:
    """An xdist controller holds the workers' suites as report dicts, not SuiteResult objects."""
    results = [suite(check("slice_gap", "fail", slice="source=plot", message="m", examples=("r-1",)),
                     check("vs_baseline", "error", compare="baseline_delta"),
                     check("speed", "warn"), check("quality_ratio", "pass"))]
    assert github.annotations([r.to_dict() for r in results]) == github.annotations(results)
    assert len(github.annotations(results)) == 3


def test_report_annotations_cover_suites_that_could_not_run_and_honour_strict() -> None:
    doc = {"strict": True, "verdict": "fail",
           "suites": [suite(check("slice_gap", "inconclusive")).to_dict()],
           "errors": [{"suite": "suites/broken.yaml", "message": "rubric: missing\nline 2"}]}
    assert github.report_annotations(doc) == [
        "::error file=suites/broken.yaml,title=distill::rubric: missing%0Aline 2",
        "::error file=rubrics/sentiment.yaml,line=7,title=distill sentiment::slice_gap inconclusive",
    ]
    assert github.report_annotations({**doc, "strict": False, "errors": []})[0].startswith("::warning ")
