"""Baselines: the file format, loading (missing / stale / corrupt), atomic writes, unused files,
and the whole lifecycle through :func:`harness.runner.run_suite` (no pytester)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness
from harness.baseline import (
    CorruptBaseline,
    MissingBaseline,
    StaleBaseline,
    StoredBaseline,
    dumps,
    load_baseline,
    unused_baselines,
)
from harness.data import Dataset, load_dataset
from harness.errors import BaselineError
from harness.options import Options
from harness.results import SuiteResult
from harness.runner import run_suite
from harness.spec import load_suite, validate_file
from harness.spec_types import SuiteSpec

LABELS = ("fresh", "rotten")
N = 60
#: Examples the teacher gets wrong (fixed, chosen — no randomness).
TEACHER_WRONG = {"rt-7", "rt-31"}
#: Examples the first student gets wrong.
STUDENT_WRONG = {"rt-3", "rt-12", "rt-44"}
#: Examples the degraded student newly gets wrong (the negative flips).
FLIPPED = ["rt-5", "rt-20", "rt-33"]

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
slices:
  - {name: plot, where: {source: plot}}
"""

RUBRIC = """\
schema_version: 1
id: r
version: 1
criteria:
  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, scope: overall,
     decision: point}
"""


def gold(i: int) -> str:
    return LABELS[i % 2]


def other(label: str) -> str:
    return LABELS[1 - LABELS.index(label)]


def write_predictions(path: Path, wrong: set[str] | list[str]) -> None:
    lines = []
    for i in range(1, N + 1):
        ex_id = f"rt-{i}"
        label = other(gold(i)) if ex_id in wrong else gold(i)
        lines.append(json.dumps({"id": ex_id, "label": label}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_repo: Any) -> Path:
    """A tiny repository (a suite, a rubric, 60 rows, teacher and student), the working
    directory; returns the suite file."""
    monkeypatch.chdir(tmp_path)
    rows = [{"id": f"rt-{i}", "text": f"review number {i}", "label": gold(i),
             "source": "plot" if i % 3 == 0 else "acting"} for i in range(1, N + 1)]
    suite: Path = make_repo(tmp_path, suite=SUITE, rubric=RUBRIC, rows=rows,
                            data="data/reviews.jsonl")
    write_predictions(tmp_path / "preds" / "teacher.jsonl", TEACHER_WRONG)
    write_predictions(tmp_path / "preds" / "student.jsonl", STUDENT_WRONG)
    return suite


def run(suite: Path, update: bool = False) -> SuiteResult:
    return run_suite(suite, Options(cache_dir=None, update_baselines=update))


def spec_and_data(suite: Path) -> tuple[SuiteSpec, Dataset]:
    spec = load_suite(suite)
    return spec, load_dataset(spec.data, spec.labels)


def baseline_file(repo: Path) -> Path:
    return repo.parent.parent / "baselines" / "s.json"


def only_check(result: SuiteResult):  # type: ignore[no-untyped-def]
    (check,) = [c for c in result.checks if c.criterion == "vs_baseline"]
    return check


# --------------------------------------------------------------------------- format and round trip

def test_write_then_load_round_trip(repo: Path) -> None:
    result = run(repo, update=True)
    assert result.baseline["written"] == "written"
    path = baseline_file(repo)
    doc = json.loads(path.read_text("utf-8"))

    about = doc["about"]
    assert doc["schema_version"] == 1
    assert about["suite"] == {"name": "s", "version": "1", "task": "classification"}
    assert about["rubric"] == {"id": "r", "version": 1}
    assert about["data_sha256"] == result.data_sha256
    assert about["n"] == N
    assert about["teacher"]["fingerprint"] == result.teacher.fingerprint
    assert about["student"]["fingerprint"] == result.student.fingerprint
    assert about["harness_version"] == harness.__version__
    assert set(about["slices"]) == {"overall", "plot"}
    overall = about["slices"]["overall"]
    assert overall["n"] == N and overall["metric"] == "accuracy"
    assert overall["student"] == pytest.approx(1 - len(STUDENT_WRONG) / N, abs=1e-6)
    assert overall["teacher"] == pytest.approx(1 - len(TEACHER_WRONG) / N, abs=1e-6)
    assert "verdict" not in overall  # depends on the run's checks, not on the stored student
    assert doc["outcomes"]["labels"] == list(LABELS)
    assert doc["outcomes"]["by_id"]["rt-3"] == other(gold(3))
    assert doc["outcomes"]["by_id"]["rt-4"] == gold(4)

    spec, data = spec_and_data(repo)
    stored = load_baseline(spec, data)
    out = stored.outputs(data, spec.labels)
    assert out.labels is not None and out.scores is None
    expected = [LABELS.index(doc["outcomes"]["by_id"][i]) for i in data.ids]
    assert out.labels.tolist() == expected
    summary = stored.summary(result.teacher.fingerprint)
    assert summary == {
        "path": "baselines/s.json", "suite_version": "1", "rubric_version": 1,
        "student_fingerprint": result.student.fingerprint,
        "teacher_fingerprint": result.teacher.fingerprint, "teacher_changed": False,
        "harness_version": harness.__version__,
    }
    assert stored.summary("another teacher")["teacher_changed"] is True
    # `distill validate` recognises and accepts it.
    assert validate_file(path) == "baseline"


def test_file_is_readable_at_the_top_and_one_line_per_id(repo: Path) -> None:
    run(repo, update=True)
    text = baseline_file(repo).read_text("utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    assert lines[1] == '  "about": {'
    outcomes_at = lines.index('  "outcomes": {')
    header = "\n".join(lines[:outcomes_at])
    for key in ("data_sha256", "fingerprint", "harness_version", '"rubric"', '"slices"', '"suite"'):
        assert key in header
    assert lines[-2] == '  "schema_version": 1'
    assert '      "rt-17": "rotten",' in lines  # one line per example: a flip is a one-line diff
    assert text == dumps(json.loads(text)).decode("utf-8")


def test_rewrite_with_nothing_changed_keeps_bytes_and_mtime(repo: Path) -> None:
    run(repo, update=True)
    path = baseline_file(repo)
    before = path.read_bytes()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    again = run(repo, update=True)
    assert again.baseline["written"] == "unchanged"
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_harness_version_alone_does_not_rewrite(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(repo, update=True)
    path = baseline_file(repo)
    before = path.read_bytes()
    monkeypatch.setattr(harness, "__version__", "9.9.9")
    assert run(repo, update=True).baseline["written"] == "unchanged"
    assert path.read_bytes() == before


def test_changed_student_rewrites(repo: Path) -> None:
    run(repo, update=True)
    path = baseline_file(repo)
    before = json.loads(path.read_text("utf-8"))
    write_predictions(repo.parent.parent / "preds" / "student.jsonl", STUDENT_WRONG | {"rt-9"})
    assert run(repo, update=True).baseline["written"] == "written"
    after = json.loads(path.read_text("utf-8"))
    changed = [i for i in after["outcomes"]["by_id"]
               if after["outcomes"]["by_id"][i] != before["outcomes"]["by_id"][i]]
    assert changed == ["rt-9"]


# --------------------------------------------------------------------------- missing, stale, corrupt

def test_missing_baseline_names_the_file_and_the_flag(repo: Path) -> None:
    spec, data = spec_and_data(repo)
    with pytest.raises(MissingBaseline) as info:
        load_baseline(spec, data)
    assert str(info.value) == ("no baseline at baselines/s.json: run with "
                               "--distill-update-baselines to write one")
    assert isinstance(info.value, BaselineError) and info.value.file == "baselines/s.json"


@pytest.mark.parametrize(("change", "expected"), [
    ("data", "data sha256"),
    ("suite_version", "suite version '1' → '2'"),
    ("rubric_version", "rubric version 1 → 2"),
    ("rubric_id", "rubric id 'r' → 'r2'"),
])
def test_stale_baseline_says_what_changed(repo: Path, change: str, expected: str) -> None:
    run(repo, update=True)
    spec, data = spec_and_data(repo)
    if change == "data":
        data = dataclasses.replace(data, sha256="0" * 64)
    elif change == "suite_version":
        spec = dataclasses.replace(spec, version="2")
    elif change == "rubric_version":
        spec = dataclasses.replace(spec, rubric=dataclasses.replace(spec.rubric, version=2))
    else:
        spec = dataclasses.replace(spec, rubric=dataclasses.replace(spec.rubric, id="r2"))
    with pytest.raises(StaleBaseline) as info:
        load_baseline(spec, data)
    text = str(info.value)
    assert text.startswith("baselines/s.json: stale baseline: ")
    assert expected in text
    assert "run with --distill-update-baselines to refresh it" in text
    if change == "data":
        assert f"→ {'0' * 12}" in text


def _corrupt_with(path: Path, edit: str) -> None:
    if edit == "bad_json":
        path.write_text(path.read_text("utf-8")[:-20], encoding="utf-8")
        return
    doc = json.loads(path.read_text("utf-8"))
    if edit == "schema":
        doc["outcomes"]["by_id"]["rt-4"] = 1
    elif edit == "unknown_id":
        doc["outcomes"]["by_id"]["rt-999"] = "fresh"
    elif edit == "missing_id":
        del doc["outcomes"]["by_id"]["rt-8"]
    elif edit == "label":
        doc["outcomes"]["by_id"]["rt-4"] = "meh"
    elif edit == "other_suite":
        doc["about"]["suite"]["name"] = "t"
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize(("edit", "field", "what"), [
    ("bad_json", "line ", "invalid JSON"),
    ("schema", "outcomes.by_id.rt-4", "expected string, got 1"),
    ("unknown_id", "outcomes.by_id", "unknown id 'rt-999' (not in the data)"),
    ("missing_id", "outcomes.by_id", "no outcome for id 'rt-8' of the data"),
    ("label", "outcomes.by_id.rt-4", "label 'meh' is not one of the suite's labels fresh, rotten"),
    ("other_suite", "about.suite.name", "written for suite 't', not 's'"),
])
def test_corrupt_baseline_names_the_file_and_field(repo: Path, edit: str, field: str,
                                                   what: str) -> None:
    run(repo, update=True)
    _corrupt_with(baseline_file(repo), edit)
    spec, data = spec_and_data(repo)
    with pytest.raises(CorruptBaseline) as info:
        load_baseline(spec, data)
    text = str(info.value)
    assert text.startswith(f"baselines/s.json: {field}")
    assert what in text
    assert text.endswith("— fix or delete the file and run with --distill-update-baselines")


def test_update_replaces_a_corrupt_file(repo: Path) -> None:
    run(repo, update=True)
    path = baseline_file(repo)
    good = path.read_bytes()
    path.write_text("<<<<<<< HEAD\n", encoding="utf-8")
    assert run(repo, update=True).baseline["written"] == "written"
    assert path.read_bytes() == good


# --------------------------------------------------------------------------- atomic writes

@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_interrupted_write_leaves_the_old_file(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                               failing: str) -> None:
    run(repo, update=True)
    path = baseline_file(repo)
    before = path.read_bytes()
    write_predictions(repo.parent.parent / "preds" / "student.jsonl", STUDENT_WRONG | {"rt-9"})

    def boom(*args: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="disk on fire"):
        run(repo, update=True)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.json"]


def test_new_file_is_readable_by_others(repo: Path) -> None:
    run(repo, update=True)
    assert baseline_file(repo).stat().st_mode & 0o044 == 0o044


# --------------------------------------------------------------------------- unused baselines

def test_unused_baselines(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "kept.json").write_text(json.dumps({"about": {"suite": {"name": "kept"}}}))
    (folder / "renamed-file.json").write_text(json.dumps({"about": {"suite": {"name": "other"}}}))
    (folder / "gone.json").write_text(json.dumps({"about": {"suite": {"name": "gone"}}}))
    (folder / "broken.json").write_text("{not json")
    (folder / "notes.txt").write_text("not a baseline")
    assert unused_baselines(tmp_path, ["kept", "other"]) == [folder / "broken.json",
                                                             folder / "gone.json"]
    assert unused_baselines(tmp_path, ["kept", "other", "gone", "broken"]) == []
    assert unused_baselines(tmp_path / "nowhere", []) == []


# --------------------------------------------------------------------------- the lifecycle (core)

def test_lifecycle_through_the_runner(repo: Path) -> None:
    root = repo.parent.parent
    path = baseline_file(repo)

    # Missing: the check errors and says how to write one — never a silent pass.
    check = only_check(run(repo))
    assert check.verdict == "error"
    assert "no baseline at baselines/s.json" in check.message
    assert "--distill-update-baselines" in check.message

    # Update: written, and the baseline check passes against what was just written.
    result = run(repo, update=True)
    assert result.baseline["written"] == "written"
    assert only_check(result).verdict == "pass"
    written = path.read_bytes()

    # Rerun: pass, and the report carries the baseline's facts.
    result = run(repo)
    assert only_check(result).verdict == "pass"
    assert result.baseline["teacher_changed"] is False
    assert result.baseline["path"] == "baselines/s.json"

    # Degraded student: fails, naming the negative flips against the baseline.
    write_predictions(root / "preds" / "student.jsonl", STUDENT_WRONG | set(FLIPPED))
    check = only_check(run(repo))
    assert check.verdict == "fail"
    assert sorted(check.examples) == sorted(FLIPPED)
    assert check.value == pytest.approx(-len(FLIPPED) / N)
    assert "(student - baseline)" in check.message

    # Update again: pass; unchanged rewrite keeps the bytes.
    assert run(repo, update=True).baseline["written"] == "written"
    assert path.read_bytes() != written
    assert only_check(run(repo)).verdict == "pass"
    kept = path.read_bytes()
    assert run(repo, update=True).baseline["written"] == "unchanged"
    assert path.read_bytes() == kept

    # A changed teacher is reported; the baseline stays usable.
    write_predictions(root / "preds" / "teacher.jsonl", TEACHER_WRONG | {"rt-50"})
    result = run(repo)
    assert only_check(result).verdict == "pass"
    assert result.baseline["teacher_changed"] is True
    assert any("teacher changed" in note for note in result.notes)

    # Corrupt: a clear error naming the file.
    path.write_text("{", encoding="utf-8")
    check = only_check(run(repo))
    assert check.verdict == "error"
    assert check.message.startswith("baselines/s.json: line 1: invalid JSON")


def test_outputs_for_a_generation_baseline() -> None:
    doc = {"about": {}, "outcomes": {"by_id": {"a": "x", "b": "y"}}}
    stored = StoredBaseline(path=Path("b.json"), doc=doc, shown="b.json")
    data = Dataset(path=Path("d.jsonl"), sha256="", ids=("b", "a"), inputs=("1", "2"), labels=None)
    out = stored.outputs(data, ())
    assert out.labels is None and out.texts == ("y", "x")
    assert np.array_equal(StoredBaseline(path=Path("b.json"), doc={"outcomes": {"by_id": {
        "a": "rotten", "b": "fresh"}}}).outputs(data, LABELS).labels, [0, 1])


# --------------------------------------------------------------------------- scorecard and pins

def test_baseline_records_the_deterministic_scorecard(repo: Path) -> None:
    result = run(repo, update=True)
    about = json.loads(baseline_file(repo).read_text("utf-8"))["about"]
    card = about["scorecard"]
    assert card["primary_metric"] == "accuracy"
    assert card["quality_ratio"] == pytest.approx((N - 3) / (N - 2), abs=1e-6)
    assert card["size_reduction"] == {"params": None, "bytes": None}  # prediction files
    assert card["training"] is None and card["training_efficiency"] is None
    assert about["student"] == {"fingerprint": result.student.fingerprint}
    text = baseline_file(repo).read_text("utf-8")
    assert "latency" not in text and "timing" not in text


def test_scorecard_keeps_training_facts_and_model_sizes(repo: Path) -> None:
    from harness.baseline import baseline_document
    from harness.results import ModelInfo

    result = run(repo)
    spec, data = spec_and_data(repo)
    result.teacher = ModelInfo("teacher", "t" * 8, params=1000, bytes=4000, type="transformers")
    result.student = ModelInfo("student", "s" * 8, params=250, bytes=1000, type="transformers")
    result.economics = {"quality_retained": 0.97, "size_reduction": 0.75,
                        "size_reduction_bytes": 0.75, "quality_retained_per_gpu_hour": 0.485,
                        "training": {"gpu_hours": 2.0, "usd": 8.0, "examples": 12000}}
    from harness.models.base import Predictions

    student = Predictions(ids=data.ids, labels=tuple(gold(int(i[3:])) for i in data.ids))
    doc = baseline_document(spec, result, data, student)
    assert doc["about"]["teacher"] == {"fingerprint": "tttttttt", "params": 1000, "bytes": 4000}
    assert doc["about"]["scorecard"] == {
        "primary_metric": "accuracy", "quality_ratio": 0.97,
        "size_reduction": {"params": 0.75, "bytes": 0.75},
        "training": {"examples": 12000, "gpu_hours": 2.0, "usd": 8.0},
        "training_efficiency": 0.485}
    from harness.spec import validate_document

    validate_document(json.loads(dumps(doc)), "baseline", "b.json")


def test_a_generation_baseline_keeps_one_output_text_per_id(repo: Path) -> None:
    from harness.baseline import baseline_document
    from harness.models.base import Predictions

    result = run(repo)
    spec, data = spec_and_data(repo)
    spec = dataclasses.replace(spec, task="generation", labels=())
    texts = tuple(f"answer {i}" for i in range(len(data)))
    doc = baseline_document(spec, result, data, Predictions(ids=data.ids, outputs=texts))
    assert "labels" not in doc["outcomes"]
    assert doc["outcomes"]["by_id"]["rt-1"] == "answer 0"
    assert '    "rt-1": "answer 0",' in dumps(doc).decode("utf-8")


def test_pin_copies_the_current_baseline(repo: Path) -> None:
    from harness.baseline import load_pinned, pin_baseline, pinned_path

    run(repo, update=True)
    spec, data = spec_and_data(repo)
    path, state = pin_baseline(spec, data, "launch")
    assert (path.name, state) == ("s@launch.json", "written")
    assert path.read_bytes() == baseline_file(repo).read_bytes()
    assert pin_baseline(spec, data, "launch")[1] == "unchanged"
    assert load_pinned(spec, data, "launch").doc == load_baseline(spec, data).doc
    assert pinned_path(spec, "v1.4").name == "s@v1.4.json"

    # A new current baseline leaves the pin alone; re-pinning replaces it.
    write_predictions(repo.parent.parent / "preds" / "student.jsonl", STUDENT_WRONG | {"rt-9"})
    pinned = path.read_bytes()
    assert run(repo, update=True).baseline["written"] == "written"
    assert path.read_bytes() == pinned
    assert pin_baseline(spec, data, "launch")[1] == "replaced"
    assert path.read_bytes() == baseline_file(repo).read_bytes()
    # A pin is a baseline of the suite: never reported as unused.
    assert unused_baselines(repo.parent.parent, ["s"]) == []


def test_missing_and_stale_pins_say_how_to_pin(repo: Path) -> None:
    from harness.baseline import load_pinned, pin_baseline

    spec, data = spec_and_data(repo)
    with pytest.raises(MissingBaseline) as info:
        load_pinned(spec, data, "launch")
    assert str(info.value) == ("no pinned baseline 'launch' at "
                               "baselines/s@launch.json: write it with "
                               "`distill baseline pin suites/s.yaml --as launch`")
    with pytest.raises(MissingBaseline, match="no baseline at baselines/s.json"):
        pin_baseline(spec, data, "launch")  # nothing to pin yet
    run(repo, update=True)
    pin_baseline(spec, data, "launch")
    newer = dataclasses.replace(spec, rubric=dataclasses.replace(spec.rubric, version=2))
    with pytest.raises(StaleBaseline) as stale:
        load_pinned(newer, data, "launch")
    assert str(stale.value) == (
        "baselines/s@launch.json: stale baseline: rubric version 1 → 2. Its outcomes no longer "
        "describe this suite: re-pin it with `distill baseline pin suites/s.yaml --as launch` "
        "(and review the diff)")


@pytest.mark.parametrize("name", ["current", "a/b", "", "@x", "launch.json"])
def test_bad_pin_names(name: str) -> None:
    from harness.baseline import check_pin_name
    from harness.errors import SpecError

    with pytest.raises(SpecError, match="pin name"):
        check_pin_name(name)


def test_cli_pin(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["baseline", "pin", "suites/s.yaml", "--as", "launch"]) == 2
    assert capsys.readouterr().err == ("distill: no baseline at baselines/s.json: run with "
                                       "--distill-update-baselines to write one\n")
    run(repo, update=True)
    assert main(["baseline", "pin", "s", "--as", "launch"]) == 0
    assert capsys.readouterr().out == ("distill: baseline s: pin 'launch' written: "
                                       "baselines/s@launch.json\n")
    assert main(["baseline", "pin", "s", "--as", "current"]) == 2
    assert "pin name 'current'" in capsys.readouterr().err
