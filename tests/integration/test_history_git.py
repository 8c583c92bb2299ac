"""Baselines over time, on a real temporary git repository.

Five accepted releases of a student on prediction files, each 0.8 points of accuracy worse
than the last (2 of 250 examples, mostly German ones). Every pull request passes against the
current baseline (margin -0.01); the criterion ``against: launch`` (pinned at the first
release, margin -0.02) fails once the losses add up. ``distill history`` shows the five
releases and a negative slope; ``distill compare`` of the last release against the first exits
1 and names the slice that lost most; a release against itself exits 0. Bad inputs are one
line on stderr and exit 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

N = 250
LABELS = ("pos", "neg")
#: Examples 0-49 are German, 50-99 French, the rest English.
LANG = {**{i: "de" for i in range(50)}, **{i: "fr" for i in range(50, 100)}}
TEACHER_WRONG = {240, 241}
STUDENT_WRONG = {120, 121, 122}
#: Release k (0-4) is also wrong on the first 2k of these: 0.8 points a release.
LOSSES = [0, 1, 2, 3, 4, 50, 5, 6]

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
defaults: {min_support: 10}
criteria:
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.9, scope: overall}
  - {name: vs_current, metric: accuracy, compare: baseline_delta, min: -0.01, scope: overall,
     decision: point}
  - {name: vs_launch, metric: accuracy, compare: baseline_delta, min: -0.02, scope: overall,
     decision: point, against: launch, owner: "@org/nlp",
     playbook: docs/playbooks/slow-drift.md}
"""


def gold(i: int) -> str:
    return LABELS[i % 2]


def predictions(wrong: set[int]) -> str:
    return "".join(json.dumps({"id": f"e{i}", "label": LABELS[1 - i % 2] if i in wrong
                               else gold(i)}) + "\n" for i in range(N))


def pull_request(root: Path, k: int) -> dict:  # type: ignore[type-arg]
    """Release k's student: what its pull request's gate says (the JSON report)."""
    (root / "preds" / "student.jsonl").write_text(
        predictions(STUDENT_WRONG | set(LOSSES[:2 * k])), encoding="utf-8")
    code = main(["run", "suites/s.yaml", "--report", f"out/pr{k}.json", "--quiet"])
    doc = json.loads((root / "out" / f"pr{k}.json").read_text("utf-8"))
    assert code == (0 if doc["verdict"] == "pass" else 1)
    return doc


def accept(git: Any, root: Path, k: int) -> None:
    """Merge release k: refresh the current baseline and commit it. Before the launch is
    pinned, the rubric's ``against: launch`` names a pin nobody wrote: exit 2, baseline written.
    From release 3 on the launch criterion fails (and the team merges anyway, for the story)."""
    code = main(["run", "suites/s.yaml", "--update-baselines", "--quiet", "--no-cache"])
    assert code == (2 if k == 0 else 0 if k < 3 else 1)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"release {k}")


def verdicts(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["criterion"]: c["verdict"] for c in doc["suites"][0]["checks"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, make_repo: Any, git: Any) -> Path:
    """Five accepted releases; the launch pinned at the first (built once for the module)."""
    root = tmp_path_factory.mktemp("drift")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        rows = [{"id": f"e{i}", "text": f"ticket {i}", "label": gold(i), "lang": LANG.get(i, "en")}
                for i in range(N)]
        make_repo(root, suite=SUITE, rubric=RUBRIC, rows=rows, project="drift",
                  predictions={"teacher": predictions(TEACHER_WRONG)})
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "suite")
        (root / "preds" / "student.jsonl").write_text(predictions(STUDENT_WRONG), "utf-8")
        accept(git, root, 0)
        assert (root / "baselines" / "s.json").is_file()
        assert main(["baseline", "pin", "s", "--as", "launch"]) == 0
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "pin the launch")
        gates = []
        for k in range(1, 5):
            gates.append(verdicts(pull_request(root, k)))
            accept(git, root, k)
    root.joinpath("gates.json").write_text(json.dumps(gates), encoding="utf-8")
    return root


@pytest.fixture
def releases(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the five-release repository (its .git included); the working folder."""
    repo = tmp_path / "repo"
    shutil.copytree(built, repo)
    monkeypatch.chdir(repo)
    return repo


def test_small_losses_pass_alone_and_add_up_against_the_launch(releases: Path, git: Any) -> None:
    gates = json.loads((releases / "gates.json").read_text("utf-8"))
    # Every pull request loses 0.008 against the current baseline: within -0.01.
    assert [g["vs_current"] for g in gates] == ["pass"] * 4
    # Against the launch the losses add up: -0.008, -0.016, then -0.024 and -0.032 < -0.02.
    assert [g["vs_launch"] for g in gates] == ["pass", "pass", "fail", "fail"]
    # --update-baselines never touches the pin: it still holds release 0.
    pin = json.loads((releases / "baselines" / "s@launch.json").read_text("utf-8"))
    assert pin["about"]["slices"]["overall"]["student"] == pytest.approx(247 / 250)
    first = git(releases, "rev-list", "--max-parents=0", "HEAD").strip()
    assert git(releases, "log", "--format=%H", "--", "baselines/s@launch.json").split() != [first]
    assert len(git(releases, "log", "--format=%H", "--", "baselines/s@launch.json").split()) == 1


def test_history_shows_five_releases_and_a_negative_slope(
        releases: Path, capsys: pytest.CaptureFixture[str], git: Any) -> None:
    assert main(["history", "s", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    overall = [r["slices"]["overall"]["value"] for r in doc["releases"]]
    assert overall == pytest.approx([0.988, 0.980, 0.972, 0.964, 0.956])
    trend = {t["figure"]: t for t in doc["trend"]}
    assert trend["accuracy[overall]"]["slope"] == pytest.approx(-0.008)
    assert trend["quality_ratio"]["slope"] < 0
    assert trend["accuracy[overall]"]["change"] == pytest.approx(-0.032)
    assert trend["accuracy[lang=de]"]["change"] == pytest.approx(-7 / 50)

    assert main(["history", "suites/s.yaml", "--plot", "out/trend.png"]) == 0
    table = capsys.readouterr().out
    commits = git(releases, "log", "--format=%h", "--", "baselines/s.json").split()
    rows = [ln for ln in table.splitlines() if ln[:4].isdigit()]
    assert len(rows) == 5
    assert [r.split()[1] for r in rows] == [c[:7] for c in reversed(commits)]
    assert "-0.0080" in table
    assert (releases / "out" / "trend.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_last_against_first_names_the_slices_that_lost_most(
        releases: Path, capsys: pytest.CaptureFixture[str], git: Any) -> None:
    first = git(releases, "log", "--reverse", "--format=%H", "--", "baselines/s.json").split()[0]
    assert main(["compare", f"{first}:baselines/s.json", "HEAD:baselines/s.json"]) == 1
    out = capsys.readouterr().out
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("B is NOT non-inferior to A under r v1")
    assert "lost most: lang=de -0.140 (n 50), lang=fr -0.020 (n 50)" in verdict
    # The pin and the first release are the same student: going back to the launch gains.
    assert main(["compare", "baselines/s.json", "baselines/s@launch.json"]) == 0
    capsys.readouterr()
    assert main(["compare", "HEAD:baselines/s.json", "baselines/s.json"]) == 0
    assert "B is non-inferior to A" in capsys.readouterr().out


def test_the_failing_item_names_its_owner_and_playbook(releases: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (releases / "preds" / "student.jsonl").write_text(
        predictions(STUDENT_WRONG | set(LOSSES)), encoding="utf-8")
    assert main(["run", "suites/s.yaml", "--markdown", "out/gate.md"]) == 1
    listing = capsys.readouterr().out
    assert "owner @org/nlp — playbook docs/playbooks/slow-drift.md" in listing
    md = (releases / "out" / "gate.md").read_text("utf-8")
    assert "  - owner @org/nlp — playbook docs/playbooks/slow-drift.md" in md
    assert "### Trend" in md and "since launch" in md


def test_pytest_item_of_the_launch_criterion(releases: Path, pytester: pytest.Pytester) -> None:
    shutil.copytree(releases, pytester.path, dirs_exist_ok=True)
    (pytester.path / "preds" / "student.jsonl").write_text(
        predictions(STUDENT_WRONG | set(LOSSES)), encoding="utf-8")
    result = pytester.runpytest("--distill-suite", "suites/s.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "FAIL: s::vs_launch[overall]",
        "*accuracy (student - baseline@launch) = *vs baseline@launch *",
        "*owner @org/nlp — playbook docs/playbooks/slow-drift.md",
    ])


def test_bad_inputs_are_one_line_exit_2(releases: Path, git: Any,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rubric = releases / "rubrics" / "r.yaml"
    rubric.write_text(rubric.read_text("utf-8").replace("against: launch", "against: nightly"),
                      encoding="utf-8")
    assert main(["run", "suites/s.yaml", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "no pinned baseline 'nightly'" in captured.err
    assert "distill baseline pin suites/s.yaml --as nightly" in captured.err
    git(releases, "checkout", "-q", "--", "rubrics/r.yaml")

    other = releases / "suites" / "t.yaml"
    other.write_text(SUITE.replace("name: s", "name: t"), encoding="utf-8")
    assert main(["run", "suites/t.yaml", "--update-baselines", "--quiet"]) == 2  # no t@launch
    assert (releases / "baselines" / "t.json").is_file()
    capsys.readouterr()
    assert main(["compare", "baselines/s.json", "baselines/t.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compare two runs of the same suite" in err

    assert main(["compare", "HEAD~9:baselines/s.json", "baselines/s.json"]) == 2
    err = capsys.readouterr().err
    assert err == "distill: HEAD~9:baselines/s.json: baselines/s.json does not exist at revision HEAD~9\n" \
        or "unknown revision" in err
    assert main(["compare", "HEAD:baselines/gone.json", "baselines/s.json"]) == 2
    assert capsys.readouterr().err == ("distill: HEAD:baselines/gone.json: baselines/gone.json "
                                       "does not exist at revision HEAD\n")
