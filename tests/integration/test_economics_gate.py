"""A rubric can fail a student on size or on latency (run-level economics figures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.options import Options
from harness.runner import run_suite

MODELS = '''
import time


def _answer(examples):
    return [{"label": ex["label"]} for ex in examples]


def fast(examples):
    time.sleep(0.002)
    return _answer(examples)


def slow(examples):
    time.sleep(0.02)
    return _answer(examples)
'''


def _repo(tmp: Path, *, teacher: dict, student: dict, criteria: str, economics: str = "") -> Path:
    (tmp / "pyproject.toml").write_text("")
    rows = [{"id": f"e{k}", "text": f"t{k}", "label": "pos" if k % 2 else "neg"} for k in range(40)]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = "".join(json.dumps({"id": r["id"], "label": r["label"]}) + "\n" for r in rows)
    (tmp / "preds.jsonl").write_text(preds)
    (tmp / "econ_models.py").write_text(MODELS)
    (tmp / "r.yaml").write_text("schema_version: 1\nid: r\nversion: 1\ncriteria:\n" + criteria)
    (tmp / "s.yaml").write_text(
        "schema_version: 1\nname: s\nversion: '1'\ntask: classification\n"
        "data: {path: data.jsonl, label: label}\nlabels: [pos, neg]\n"
        f"teacher: {json.dumps(teacher)}\nstudent: {json.dumps(student)}\nrubric: r.yaml\n"
        + economics)
    return tmp / "s.yaml"


def test_a_rubric_fails_a_student_that_is_not_small_enough(tmp_path: Path) -> None:
    suite = _repo(
        tmp_path,
        teacher={"type": "predictions", "path": "preds.jsonl", "metadata": {"params": 1000}},
        student={"type": "predictions", "path": "preds.jsonl", "metadata": {"params": 900}},
        criteria="  - {name: size, metric: size_reduction, compare: value, min: 0.3}\n")
    result = run_suite(suite, Options(cache_dir=None))
    (check,) = result.checks
    assert check.value == pytest.approx(0.1)
    assert check.verdict == "fail"
    assert result.economics["metrics"]["size_reduction"] == pytest.approx(0.1)


def test_a_rubric_fails_a_student_that_is_not_faster(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("econ_models", None)
    suite = _repo(
        tmp_path,
        teacher={"type": "callable", "target": "econ_models:fast"},
        student={"type": "callable", "target": "econ_models:slow"},
        criteria="  - {name: speed, metric: latency_improvement, compare: value, min: 1.5}\n"
                 "  - {name: speed_warn, metric: latency_improvement, compare: value, min: 1.5, "
                 "severity: warn}\n",
        economics="economics: {batch_sizes: [4], sample: 8, warmup: 1, repeats: 3}\n")
    result = run_suite(suite, Options(cache_dir=None))
    speed, warn = result.checks
    assert speed.value is not None and speed.value < 0.5  # the student is ~10x slower
    assert speed.verdict == "fail"
    assert warn.verdict == "warn"
    assert result.verdict == "fail"


def test_timing_a_predictions_file_is_an_error_not_a_pass(tmp_path: Path) -> None:
    suite = _repo(
        tmp_path,
        teacher={"type": "predictions", "path": "preds.jsonl"},
        student={"type": "predictions", "path": "preds.jsonl"},
        criteria="  - {name: speed, metric: latency_improvement, compare: value, min: 1.5}\n")
    (check,) = run_suite(suite, Options(cache_dir=None)).checks
    assert check.verdict == "error"
    assert "cannot be timed" in check.message


def test_candidate_students_frontier_and_recommendation(tmp_path: Path) -> None:
    """Three candidates on prediction files: the smallest one that passes is recommended."""
    (tmp_path / "pyproject.toml").write_text("")
    rows = [{"id": f"e{k}", "text": f"t{k}", "label": "pos" if k % 2 else "neg"}
            for k in range(400)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def write(name: str, wrong_every: int) -> None:
        lines = []
        for k, r in enumerate(rows):
            wrong = wrong_every and k % wrong_every == 0
            label = ("neg" if r["label"] == "pos" else "pos") if wrong else r["label"]
            lines.append(json.dumps({"id": r["id"], "label": label}) + "\n")
        (tmp_path / f"{name}.jsonl").write_text("".join(lines))

    write("teacher", 0)
    write("tiny", 2)     # half wrong: fails quality
    write("small", 50)   # 2% wrong: passes
    write("big", 100)    # 1% wrong: passes, larger
    (tmp_path / "r.yaml").write_text(
        "schema_version: 1\nid: r\nversion: 1\ncriteria:\n"
        "  - {name: q, metric: accuracy, compare: teacher_ratio, min: 0.9}\n")

    def model(name: str, params: int) -> str:
        return f"{{type: predictions, path: {name}.jsonl, metadata: {{params: {params}}}}}"

    (tmp_path / "s.yaml").write_text(
        "schema_version: 1\nname: s\nversion: '1'\ntask: classification\n"
        "data: {path: data.jsonl, label: label}\nlabels: [pos, neg]\n"
        f"teacher: {model('teacher', 1000)}\nrubric: r.yaml\nstudents:\n"
        f"  tiny: {model('tiny', 100)}\n  small: {model('small', 300)}\n"
        f"  big: {model('big', 600)}\n")
    result = run_suite(tmp_path / "s.yaml", Options(cache_dir=None))
    econ = result.economics
    assert {c["name"]: c["passes"] for c in econ["candidates"]} == {
        "tiny": False, "small": True, "big": True}
    assert set(econ["frontier"]) == {"tiny", "small", "big"}  # each wins on quality or size
    assert econ["recommended"] == "small"
    assert econ["gated_student"] == "tiny"  # the first candidate is gated when no student is named
