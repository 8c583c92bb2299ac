"""pytest-xdist: parallel runs give the serial verdicts and report, and each model runs once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

MODELS = '''
import os

LABELS = ["pos", "neg"]


def _log(role):
    with open(os.environ["DISTILL_CALL_LOG"], "a") as fh:
        fh.write(role + "\\n")


def teacher(examples):
    _log("teacher")
    return [{"label": ex["label"], "scores": {"pos": 0.9, "neg": 0.1} if ex["label"] == "pos"
             else {"pos": 0.1, "neg": 0.9}} for ex in examples]


def student(examples):
    _log("student")
    # Wrong on every "b" example whose number is a multiple of 2: a collapsed slice.
    out = []
    for ex in examples:
        wrong = ex["group"] == "b" and ex["k"] % 2 == 0
        label = ("neg" if ex["label"] == "pos" else "pos") if wrong else ex["label"]
        out.append({"label": label})
    return out
'''


def _repo(tmp: Path) -> Path:
    (tmp / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
    (tmp / "xdist_models.py").write_text(MODELS)
    rows = [{"id": f"e{k}", "text": f"t{k}", "label": "pos" if k % 3 else "neg",
             "group": "a" if k < 120 else "b", "k": k} for k in range(240)]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "suites").mkdir()
    (tmp / "rubrics").mkdir()
    (tmp / "rubrics" / "r.yaml").write_text(
        "schema_version: 1\nid: r\nversion: 1\ncriteria:\n"
        "  - {name: gap, metric: accuracy, compare: teacher_delta, min: -0.05, scope: all}\n")
    (tmp / "suites" / "s.yaml").write_text(
        "schema_version: 1\nname: s\nversion: '1'\ntask: classification\n"
        "data: {path: ../data.jsonl, label: label, features: [group]}\nlabels: [pos, neg]\n"
        "teacher: {type: callable, target: 'xdist_models:teacher'}\n"
        "student: {type: callable, target: 'xdist_models:student'}\n"
        "rubric: ../rubrics/r.yaml\nslices:\n  - by: group\n")
    return tmp


def _run(repo: Path, *args: str, log: Path) -> tuple[int, dict]:
    env = dict(os.environ, PYTHONPATH=str(repo), DISTILL_CALL_LOG=str(log))
    env.pop("GITHUB_ACTIONS", None)
    env.pop("GITHUB_STEP_SUMMARY", None)
    report = repo / f"report{len(list(repo.glob('report*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--distill-suite", "suites",
         "--distill-report", str(report), *args], cwd=repo, env=env, capture_output=True,
        text=True, timeout=240)
    assert report.exists(), proc.stdout + proc.stderr
    return proc.returncode, json.loads(report.read_text())


def _comparable(doc: dict) -> dict:
    for suite in doc["suites"]:
        suite["teacher"].pop("cached", None)
        suite["student"].pop("cached", None)
    return doc


def test_xdist_gives_the_serial_report_and_runs_each_model_once(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    serial_log, xdist_log = tmp_path / "serial.log", tmp_path / "xdist.log"
    code_serial, serial = _run(repo, "--distill-cache", "cache-serial", log=serial_log)
    code_xdist, parallel = _run(repo, "-n", "2", "--distill-cache", "cache-xdist", log=xdist_log)
    assert code_serial == code_xdist == 1
    assert _comparable(serial) == _comparable(parallel)
    failing = [c["id"] for c in parallel["suites"][0]["checks"] if c["verdict"] == "fail"]
    assert failing == ["s::gap[overall]", "s::gap[group=b]"]
    # Two workers evaluate the suite, but the second reads the first one's cached outputs.
    assert sorted(xdist_log.read_text().split()) == ["student", "teacher"]
    assert sorted(serial_log.read_text().split()) == ["student", "teacher"]
