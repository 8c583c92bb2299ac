"""distill compare: two runs paired by example id, per-slice deltas with CIs, flips both ways,
the verdict under the rubric's baseline_* margins, and every bad input as one line, exit 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare import CompareError, compare_runs, read_run
from harness.options import Options
from harness.runner import run_suite
from harness.spec import load_suite

N = 200
LABELS = ("pos", "neg")
#: The first 60 examples are German, the rest English.
DE = 60

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
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.8, scope: overall}
  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, scope: all,
     decision: point}
"""


def gold(i: int) -> str:
    return LABELS[i % 2]


def write_student(root: Path, wrong: set[int]) -> None:
    lines = [json.dumps({"id": f"e{i}", "label": LABELS[1 - i % 2] if i in wrong else gold(i)})
             for i in range(N)]
    (root / "preds" / "student.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def new_repo(make_repo: Any) -> Callable[..., Path]:
    """``new_repo(root, name="s")``: these tests' repository (teacher right everywhere, no
    student yet); returns the suite file."""
    def make(root: Path, name: str = "s") -> Path:
        rows = [{"id": f"e{i}", "text": f"text {i}", "label": gold(i),
                 "lang": "de" if i < DE else "en"} for i in range(N)]
        teacher = make_repo.jsonl({"id": f"e{i}", "label": gold(i)} for i in range(N))
        suite: Path = make_repo(root, suite=SUITE.replace("name: s", f"name: {name}"),
                                rubric=RUBRIC, rows=rows, predictions={"teacher": teacher},
                                name=name, project="c")
        return suite
    return make


def update(suite: Path, wrong: set[int]) -> None:
    write_student(suite.parents[1], wrong)
    run_suite(suite, Options(cache_dir=None, update_baselines=True))


#: A: wrong on e100, e101. B: A's answers, but newly wrong on eight German examples
#: (e0-e7) and right again on e100.
A_WRONG = {100, 101}
B_WRONG = {101, *range(8)}


@pytest.fixture
def two_baselines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_repo: Any) -> Path:
    monkeypatch.chdir(tmp_path)
    suite = new_repo(tmp_path)
    update(suite, A_WRONG)
    shutil.copy(tmp_path / "baselines" / "s.json", tmp_path / "a.json")
    update(suite, B_WRONG)
    shutil.copy(tmp_path / "baselines" / "s.json", tmp_path / "b.json")
    return suite


def test_per_slice_deltas_flips_and_the_verdict(two_baselines: Path) -> None:
    a, b = read_run("a.json"), read_run("b.json")
    cmp = compare_runs(a, b, load_suite(two_baselines))
    rows = {s.slice: s for s in cmp.slices}
    assert cmp.n == N and cmp.metric == "accuracy"
    assert list(rows) == ["overall", "lang=de", "lang=en"]
    de = rows["lang=de"]
    assert (de.n, de.lost, de.gained) == (DE, 8, 0)
    assert de.a == pytest.approx(1.0) and de.b == pytest.approx(52 / 60)
    assert de.delta == pytest.approx(-8 / 60)
    assert de.ci is not None and de.ci[0] < de.delta < de.ci[1] < 0
    assert de.lost_ids == ("e0", "e1", "e2", "e3", "e4")
    en = rows["lang=en"]
    assert (en.lost, en.gained, en.gained_ids) == (0, 1, ("e100",))
    assert rows["overall"].delta == pytest.approx(-7 / N)
    verdicts = {c.slice: c.verdict for c in cmp.checks}
    assert verdicts == {"overall": "fail", "lang=de": "fail", "lang=en": "pass"}
    assert not cmp.non_inferior
    assert [s.slice for s in cmp.lost_most()] == ["lang=de"]


def test_a_run_against_itself_is_non_inferior(two_baselines: Path) -> None:
    cmp = compare_runs(read_run("b.json"), read_run("b.json"), load_suite(two_baselines))
    assert cmp.non_inferior and all(s.delta == 0 for s in cmp.slices)
    assert cmp.lost_most() == []


def test_cli_exit_codes_and_formats(two_baselines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "a.json", "b.json"]) == 1
    out = capsys.readouterr().out
    assert "B is NOT non-inferior to A under r v1: vs_baseline[overall] -0.0350 vs min -0.01" in out
    assert "lost most: lang=de -0.133 (n 60)" in out
    assert main(["compare", "b.json", "a.json", "--format", "json"]) == 0  # going back gains
    doc = json.loads(capsys.readouterr().out)
    assert doc["non_inferior"] is True and doc["verdict"] == "non-inferior"
    assert {s["slice"]: s["gained"] for s in doc["slices"]}["lang=de"] == 8
    assert main(["compare", "a.json", "b.json", "--format", "markdown"]) == 1
    md = capsys.readouterr().out
    assert md.startswith("### distill compare: s") and "| slice " in md


def test_a_looser_rubric_passes_what_the_suites_rubric_fails(two_baselines: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             ) -> None:
    Path("rubrics/loose.yaml").write_text(RUBRIC.replace("min: -0.01", "min: -0.2")
                                          .replace("id: r", "id: loose"), encoding="utf-8")
    assert main(["compare", "a.json", "b.json", "--rubric", "rubrics/loose.yaml"]) == 0
    assert "B is non-inferior to A under loose v1" in capsys.readouterr().out


def test_without_a_baseline_criterion_margin_zero_significant(two_baselines: Path) -> None:
    from harness.spec import load_rubric

    Path("rubrics/none.yaml").write_text(
        "schema_version: 1\nid: none\nversion: 1\ncriteria:\n"
        "  - {name: q, metric: accuracy, compare: teacher_ratio, min: 0.8, scope: overall}\n",
        encoding="utf-8")
    cmp = compare_runs(read_run("a.json"), read_run("b.json"), load_suite(two_baselines),
                       rubric=load_rubric(Path("rubrics/none.yaml")))
    assert {c.criterion for c in cmp.checks} == {"non_inferior"}
    # 8 German flips against 0: exact McNemar rejects "no loss" (p = 2^-8 before BH).
    de = next(c for c in cmp.checks if c.slice == "lang=de")
    assert de.verdict == "fail" and de.p_value == pytest.approx(0.5 ** 8)
    assert any("no baseline_* criterion" in n for n in cmp.notes)


def test_rev_path_reads_a_file_at_a_revision(two_baselines: Path, git: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = two_baselines.parents[1]
    git(root, "init", "-q", "-b", "main")
    shutil.copy(root / "a.json", root / "baselines" / "s.json")
    git(root, "add", "baselines/s.json")
    git(root, "commit", "-q", "-m", "A")
    shutil.copy(root / "b.json", root / "baselines" / "s.json")
    git(root, "commit", "-q", "-am", "B")
    assert main(["compare", "HEAD~1:baselines/s.json", "HEAD:baselines/s.json"]) == 1
    assert "lost most: lang=de" in capsys.readouterr().out
    assert main(["compare", "HEAD:baselines/s.json", "baselines/s.json"]) == 0
    capsys.readouterr()
    assert main(["compare", "HEAD:baselines/nope.json", "b.json"]) == 2
    assert capsys.readouterr().err == (
        "distill: HEAD:baselines/nope.json: baselines/nope.json does not exist at revision HEAD\n")
    assert main(["compare", "v9:baselines/s.json", "b.json"]) == 2
    assert capsys.readouterr().err == (
        "distill: v9:baselines/s.json: unknown revision 'v9' in this repository\n")


def test_different_suites_are_one_line_exit_2(two_baselines: Path, new_repo: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    other = new_repo(two_baselines.parents[1], name="t")
    update(other, A_WRONG)
    assert main(["compare", "a.json", "baselines/t.json"]) == 2
    assert capsys.readouterr().err == ("distill: a.json is suite 's' and baselines/t.json is "
                                       "suite 't': compare two runs of the same suite\n")


def test_no_shared_ids_is_exit_2(two_baselines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(Path("b.json").read_text("utf-8"))
    doc["outcomes"]["by_id"] = {"zz1": "pos", "zz2": "neg"}
    Path("odd.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CompareError, match="share no example id"):
        compare_runs(read_run("a.json"), read_run("odd.json"), load_suite(two_baselines))
    assert main(["compare", "a.json", "odd.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "share no example id" in err


@pytest.mark.parametrize(("content", "what"), [
    ("{", "not a JSON baseline or report"),
    ('{"hello": 1}', "not a baseline (no 'outcomes') or a report (no 'suites')"),
    ('{"schema_version": 1, "about": {}, "outcomes": {"by_id": {}}}', "about"),
])
def test_bad_files_are_exit_2(two_baselines: Path, capsys: pytest.CaptureFixture[str],
                              content: str, what: str) -> None:
    Path("bad.json").write_text(content, encoding="utf-8")
    assert main(["compare", "bad.json", "a.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distill: bad.json: ") and what in err and err.count("\n") == 1
    assert main(["compare", "missing.json", "a.json"]) == 2
    assert "missing.json: file not found" in capsys.readouterr().err


def test_a_report_is_compared_through_the_prediction_cache(two_baselines: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           ) -> None:
    assert main(["run", "suites/s.yaml", "--report", "out/b.json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", "a.json", "out/b.json"]) == 1  # the report's student is B
    assert "lost most: lang=de" in capsys.readouterr().out
    assert main(["compare", "a.json", "out/b.json", "--cache", "elsewhere"]) == 2
    assert "a report stores no per-example outcomes" in capsys.readouterr().err


GEN_SUITE = """\
schema_version: 1
name: g
version: "1"
task: generation
data: {path: ../data/qa.jsonl, input: question, label: answer, features: [topic]}
teacher: {type: predictions, path: ../preds/g-teacher.jsonl}
student: {type: predictions, path: ../preds/g-student.jsonl}
rubric: ../rubrics/g.yaml
slices:
  - by: topic
"""

GEN_RUBRIC = """\
schema_version: 1
id: g
version: 1
criteria:
  - {name: quality, metric: exact_match, compare: teacher_ratio, min: 0.5, scope: overall}
  - {name: vs_baseline, metric: exact_match, compare: baseline_delta, min: -0.05, scope: all,
     decision: point}
"""


def test_generation_baselines_compare_output_texts(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'g'\n", encoding="utf-8")
    for folder in ("suites", "rubrics", "data", "preds"):
        (tmp_path / folder).mkdir()
    (tmp_path / "suites" / "g.yaml").write_text(GEN_SUITE, encoding="utf-8")
    (tmp_path / "rubrics" / "g.yaml").write_text(GEN_RUBRIC, encoding="utf-8")
    rows = [{"id": f"q{i}", "question": f"capital {i}?", "answer": f"city {i}",
             "topic": "geo" if i < 20 else "misc"} for i in range(40)]
    (tmp_path / "data" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                                encoding="utf-8")

    def outputs(name: str, wrong: set[int]) -> None:
        lines = [json.dumps({"id": f"q{i}", "output": "no idea" if i in wrong else f"city {i}"})
                 for i in range(40)]
        (tmp_path / "preds" / f"g-{name}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")

    outputs("teacher", set())
    outputs("student", {30})
    suite = tmp_path / "suites" / "g.yaml"
    run_suite(suite, Options(cache_dir=None, update_baselines=True))
    doc = json.loads((tmp_path / "baselines" / "g.json").read_text("utf-8"))
    assert doc["outcomes"] == {"by_id": {f"q{i}": "no idea" if i == 30 else f"city {i}"
                                         for i in range(40)}}
    assert doc["about"]["scorecard"]["primary_metric"] == "exact_match"
    assert doc["about"]["scorecard"]["quality_ratio"] == pytest.approx(39 / 40)
    shutil.copy(tmp_path / "baselines" / "g.json", tmp_path / "first.json")
    outputs("student", {30, 0, 1, 2, 3})  # four geography questions newly wrong
    run_suite(suite, Options(cache_dir=None, update_baselines=True))
    cmp = compare_runs(read_run("first.json"), read_run("baselines/g.json"), load_suite(suite))
    rows = {s.slice: s for s in cmp.slices}
    assert cmp.metric == "exact_match"
    assert (rows["topic=geo"].lost, rows["topic=geo"].delta) == (4, pytest.approx(-0.2))
    assert rows["topic=misc"].delta == 0
    assert not cmp.non_inferior and [s.slice for s in cmp.lost_most()] == ["topic=geo"]


#: A rubric whose margin the data decides only in part: significant, not point decisions.
SIGNIFICANT = """\
schema_version: 1
id: r
version: 1
criteria:
  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, scope: all}
  - {name: vs_baseline_ratio, metric: accuracy, compare: baseline_ratio, min: 0.97, scope: all,
     min_support: 100}
"""


@pytest.mark.parametrize("strict", [False, True])
def test_run_and_compare_give_the_same_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                new_repo: Any, strict: bool) -> None:
    """One verdict logic: B's baseline checks against A decided by ``distill run`` (A as the
    stored baseline) and by ``distill compare A B`` are the same, with and without strict."""
    monkeypatch.chdir(tmp_path)
    suite = new_repo(tmp_path)
    (tmp_path / "rubrics" / "r.yaml").write_text(SIGNIFICANT, encoding="utf-8")
    update(suite, A_WRONG)
    shutil.copy(tmp_path / "baselines" / "s.json", tmp_path / "a.json")
    # B: ten German examples newly wrong (a significant loss), two English ones (a loss the
    # data cannot call significant).
    write_student(tmp_path, A_WRONG | set(range(10)) | {150, 151})
    flag = ["--strict"] if strict else []
    assert main(["run", "suites/s.yaml", "--report", "run.json", "--no-cache", "--quiet",
                 *flag]) == 1
    doc = json.loads((tmp_path / "run.json").read_text("utf-8"))
    by_run = {(c["criterion"], c["slice"]): c["verdict"] for c in doc["suites"][0]["checks"]}
    assert main(["run", "suites/s.yaml", "--no-cache", "--quiet", "--update-baselines"]) == 0
    capsys.readouterr()
    main(["compare", "a.json", "baselines/s.json", "--format", "json", *flag])
    cmp = json.loads(capsys.readouterr().out)
    by_compare = {(c["criterion"], c["slice"]): c["verdict"] for c in cmp["checks"]}
    assert by_compare == by_run
    verdicts = set(by_run.values())
    assert "fail" in verdicts
    assert ("inconclusive" in verdicts) is not strict  # strict turns it into fail
    assert cmp["non_inferior"] is False
