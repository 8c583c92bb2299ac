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
