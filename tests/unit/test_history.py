"""distill history: releases read from git (renames, shallow clones, no git), reports folded
in, the trend of each figure, the renderers and the plot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import history
from harness.cli import main
from harness.errors import SpecError
from harness.history import HistoryError, Release, merge_reports, suite_history, trend
from harness.options import Options
from harness.runner import run_suite
from harness.spec import load_suite

N = 100
LABELS = ("pos", "neg")

SUITE = """\
schema_version: 1
name: s
version: "1"
task: classification
labels: [pos, neg]
data: {path: ../data/eval.jsonl, label: label, features: [lang]}
teacher: {type: predictions, path: ../preds/teacher.jsonl}
student: {type: predictions, path: ../preds/student.jsonl}
rubric: ../rubrics/r.yaml
slices:
  - by: lang
"""

RUBRIC = """\
schema_version: 1
id: r
version: 1
criteria:
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.9, scope: overall}
"""


def gold(i: int) -> str:
    return LABELS[i % 2]


def write_student(root: Path, wrong: int, name: str = "student") -> None:
    """The student gets the first ``wrong`` examples wrong (fixed, chosen)."""
    lines = [json.dumps({"id": f"e{i}", "label": LABELS[1 - i % 2] if i < wrong else gold(i)})
             for i in range(N)]
    (root / "preds" / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def new_repo(make_repo: Any, git: Any) -> Callable[[Path], Path]:
    """``new_repo(root)``: these tests' repository under git, no release yet (the suite file)."""
    def make(root: Path) -> Path:
        rows = [{"id": f"e{i}", "text": f"text {i}", "label": gold(i),
                 "lang": "de" if i < 30 else "en"} for i in range(N)]
        teacher = make_repo.jsonl({"id": f"e{i}", "label": gold(i)} for i in range(N))
        suite: Path = make_repo(root, suite=SUITE, rubric=RUBRIC, rows=rows,
                                predictions={"teacher": teacher}, project="h")
        git(root, "init", "-q", "-b", "main")
        return suite
    return make


def release(git: Any, root: Path, suite: Path, wrong: int, day: int) -> None:
    write_student(root, wrong)
    run_suite(suite, Options(cache_dir=None, update_baselines=True))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"student with {wrong} wrong", date=f"2026-01-{day:02d}T12:00:00Z")


@pytest.fixture
def series(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_repo: Any, git: Any) -> Path:
    """Three releases: 2, 4 and 8 wrong of 100 (accuracy 0.98, 0.96, 0.92)."""
    monkeypatch.chdir(tmp_path)
    suite = new_repo(tmp_path)
    for day, wrong in enumerate((2, 4, 8), start=1):
        release(git, tmp_path, suite, wrong, day)
    return suite


def test_one_release_per_baseline_commit_oldest_first(series: Path) -> None:
    hist = suite_history(load_suite(series))
    assert [r.overall for r in hist.releases] == pytest.approx([0.98, 0.96, 0.92])
    assert [r.quality_ratio for r in hist.releases] == pytest.approx([0.98, 0.96, 0.92])
    assert [r.date[:10] for r in hist.releases] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert all(r.commit and len(r.commit) == 40 for r in hist.releases)
    assert hist.releases[0].slice_n == {"overall": 100, "lang=de": 30, "lang=en": 70}
    assert hist.releases[-1].slices["lang=de"] == pytest.approx(22 / 30, abs=1e-6)
    assert len({r.student_fingerprint for r in hist.releases}) == 3


def test_a_commit_that_does_not_touch_the_baseline_is_no_release(series: Path, git: Any) -> None:
    root = series.parents[1]
    (root / "README.md").write_text("notes\n", encoding="utf-8")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "docs")
    assert len(suite_history(load_suite(series)).releases) == 3


def test_trend_slope_and_change_since_first() -> None:
    t = trend("q", [0.98, 0.96, None, 0.92])
    # linregress over release indices 0, 1, 3
    assert t.first == 0.98 and t.last == 0.92 and t.releases == 3
    assert t.change == pytest.approx(-0.06)
    assert t.slope == pytest.approx(-0.02)
    assert trend("q", [None, None]).slope is None
    assert trend("q", [0.5]).slope is None and trend("q", [0.5]).change == 0.0


def test_history_follows_a_renamed_baseline(series: Path, git: Any) -> None:
    root = series.parents[1]
    git(root, "mv", "baselines/s.json", "baselines/s-renamed.json")
    suite_text = (root / "suites" / "s.yaml").read_text("utf-8")
    (root / "suites" / "s.yaml").write_text(suite_text + "baseline: ../baselines/s-renamed.json\n",
                                            encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "rename the baseline")
    release(git, root, series, 10, 9)
    hist = suite_history(load_suite(series))
    assert hist.baseline == "baselines/s-renamed.json"
    assert [r.overall for r in hist.releases] == pytest.approx([0.98, 0.96, 0.92, 0.92, 0.90])


def test_reports_fill_in_latency_or_add_a_release(series: Path, tmp_path: Path) -> None:
    hist = suite_history(load_suite(series))
    last = hist.releases[-1]
    same = Release(date="2026-01-03T13:00:00+00:00", source="r.json", commit=None,
                   suite_version="1", rubric_version="1",
                   student_fingerprint=last.student_fingerprint, teacher_fingerprint=None,
                   data_sha256=last.data_sha256, metric="accuracy", latency_improvement=3.5)
    other = Release(date="2026-01-02T18:00:00+00:00", source="pr.json", commit=None,
                    suite_version="1", rubric_version="1", student_fingerprint="f" * 64,
                    teacher_fingerprint=None, data_sha256=last.data_sha256, metric="accuracy",
                    latency_improvement=2.0, slices={"overall": 0.95})
    merged = merge_reports(hist.releases, [same, other])
    assert [r.latency_improvement for r in merged] == [None, None, 2.0, 3.5]
    assert [r.label for r in merged] == [hist.releases[0].commit[:7],  # type: ignore[index]
                                         hist.releases[1].commit[:7], "pr",  # type: ignore[index]
                                         last.commit[:7]]  # type: ignore[index]


def test_cli_history_with_a_saved_report(series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "suites/s.yaml", "--report", "out/r.json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["history", "s", "--format", "json", "--reports", "out/r.json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["suite"] == "s" and doc["metric"] == "accuracy"
    assert len(doc["releases"]) == 3  # the report's student is the last release: folded in
    trends = {t["figure"]: t for t in doc["trend"]}
    assert trends["quality_ratio"]["slope"] == pytest.approx(-0.03, abs=1e-9)
    assert trends["accuracy[overall]"]["change"] == pytest.approx(-0.06)
    assert trends["accuracy[lang=de]"]["releases"] == 3


def test_cli_table_markdown_and_plot(series: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "suites/s.yaml", "--plot", "trend.png"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "distill history s: 3 releases of baselines/s.json"
    assert "quality_ratio" in out and "-0.0300" in out  # slope per release
    assert sum(1 for ln in lines if ln.startswith("2026-01-0")) == 3
    png = Path("trend.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert main(["history", "s", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("### s: 3 releases of baselines/s.json")
    assert "| date " in md and "**Trend**" in md


def test_thresholds_of_the_rubric_for_the_plot(series: Path) -> None:
    spec = load_suite(series)
    assert history.thresholds(spec.rubric, "accuracy") == {
        "quality_ratio": [("quality_ratio min 0.9", 0.9)]}


def test_trend_summary_for_the_markdown_report(series: Path) -> None:
    summary = history.trend_summary(load_suite(series).baseline_path, last=2)
    assert summary is not None
    assert summary["launch"]["quality_ratio"] == pytest.approx(0.98)
    assert [r["quality_ratio"] for r in summary["releases"]] == pytest.approx([0.96, 0.92])
    assert summary["quality_ratio_change"] == pytest.approx(-0.06)


# --------------------------------------------------------------------------- what cannot give a history

def test_shallow_clone_is_one_line_exit_2(series: Path, tmp_path: Path, git: Any,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{tmp_path}", str(clone))
    monkeypatch.chdir(clone)
    assert main(["history", "s"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "shallow clone" in err and "fetch-depth: 0" in err


def test_uncommitted_baseline_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 new_repo: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    suite = new_repo(tmp_path)
    write_student(tmp_path, 2)
    run_suite(suite, Options(cache_dir=None, update_baselines=True))
    assert main(["history", "s"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("distill: baselines/s.json has no committed history: commit it (each accepted "
                   "baseline update is one release), or, in CI, fetch the whole history "
                   "(actions/checkout with `fetch-depth: 0`, or `git fetch --unshallow`)")


def test_no_repository_and_no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_repo: Any,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    new_repo(tmp_path)
    write_student(tmp_path, 2)
    (tmp_path / ".git").rename(tmp_path / "not-git")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(HistoryError, match="is not inside a git repository.*fetch-depth: 0"):
        history.git_releases(tmp_path / "baselines" / "s.json")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["history", "s"]) == 2
    assert capsys.readouterr().err.strip() == (
        "distill: git is not installed or not on PATH: the baseline's history is read with git")


def test_unknown_suite_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_repo: Any,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    new_repo(tmp_path)
    assert main(["history", "nope"]) == 2
    assert "no suite file or suite named 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- in the reports

def _report(trend: dict | None = None) -> dict:  # type: ignore[type-arg]
    check = {"id": "s::slice_gap[lang=de]", "criterion": "slice_gap", "scope": "slices",
             "slice": "lang=de", "metric": "accuracy", "compare": "teacher_delta",
             "value": -0.2, "ci": [-0.3, -0.1], "n": 40, "threshold": {"min": -0.05},
             "p_value": 0.001, "q_value": 0.002, "verdict": "fail", "message": "too low",
             "examples": ["e1"], "owner": "@org/nlp", "playbook": "docs/playbooks/contrast.md"}
    suite = {"name": "s", "version": "1", "task": "classification", "n": 100, "verdict": "fail",
             "data_sha256": "0" * 64, "rubric": {"id": "r", "version": 1, "path": "rubrics/r.yaml",
                                                  "lines": {"slice_gap": 7}},
             "teacher": {"fingerprint": "t" * 16}, "student": {"fingerprint": "s" * 16},
             "checks": [check], "baseline": {"path": "baselines/s.json"}}
    if trend is not None:
        suite["baseline"]["trend"] = trend
    return {"schema_version": 1, "harness_version": "0", "verdict": "fail", "suites": [suite]}


def test_owner_and_playbook_in_markdown_annotation_and_listing() -> None:
    from harness.report.github import annotation
    from harness.report.markdown import owner_line, render_markdown
    from harness.report.terminal import suite_lines

    doc = _report()
    md = render_markdown(doc)
    assert "  - owner @org/nlp — playbook docs/playbooks/contrast.md" in md
    line = annotation(doc["suites"][0], doc["suites"][0]["checks"][0])
    assert line is not None and line.startswith("::error file=rubrics/r.yaml,line=7,")
    assert line.endswith("%0Aowner @org/nlp — playbook docs/playbooks/contrast.md")
    listing = "\n".join(suite_lines(doc["suites"][0]))
    assert "owner — playbook" in listing and "owner @org/nlp — playbook docs/playbooks" in listing
    assert owner_line(None, "https://x/y") == "playbook https://x/y"
    assert owner_line(None, None) == ""
    assert "### Trend" not in md  # no history, no section


def test_trend_section_of_the_markdown_report(series: Path) -> None:
    from harness.report.markdown import render_markdown

    trend = history.trend_summary(load_suite(series).baseline_path)
    md = render_markdown(_report(trend))
    section = md[md.index("### Trend"):]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `")]
    assert [r.split(" | ")[-1] for r in rows] == ["0.980 |", "0.960 |", "0.920 |"]
    assert "Quality ratio -0.060 since launch" in section


def test_a_session_records_the_trend_when_the_baseline_has_history(series: Path) -> None:
    from harness.session import DistillSession

    options = Options(cache_dir=None)
    result = DistillSession(options, [series]).evaluate(series).result
    assert result is not None
    assert result.baseline["trend"]["quality_ratio_change"] == pytest.approx(-0.06)
    assert len(result.baseline["trend"]["releases"]) == 3
    # The run itself reads no git: the trend is the session's, after the run.
    assert "trend" not in run_suite(series, options).baseline


def test_a_revision_whose_baseline_cannot_be_read_is_skipped_with_a_note(series: Path,
                                                                        git: Any) -> None:
    root = series.parents[1]
    (root / "baselines" / "s.json").write_text("<<<<<<< HEAD\n", encoding="utf-8")
    git(root, "commit", "-q", "-am", "a bad merge")
    release(git, root, series, 10, 9)
    hist = suite_history(load_suite(series))
    assert [r.overall for r in hist.releases] == pytest.approx([0.98, 0.96, 0.92, 0.90])
    assert len(hist.notes) == 1 and hist.notes[0].startswith("skipped ")
    assert "invalid JSON" in hist.notes[0]


def test_a_report_of_another_student_is_a_row_of_its_own(series: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    write_student(series.parents[1], 9)  # a pull request's student, never accepted
    assert main(["run", "suites/s.yaml", "--report", "out/pr.json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["history", "s", "--reports", "out/pr.json"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines()
            if ln[:4].isdigit() and "pr.json" in ln]
    assert len(rows) == 1 and " 0.910 " in rows[0]
    with pytest.raises(SpecError, match="no run of suite 'other' in this report"):
        history.report_releases([Path("out/pr.json")], "other")
