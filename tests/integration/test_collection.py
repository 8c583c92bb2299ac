"""Collection runs no model: items come from the plan, a suite runs once at its first item.

The models here are ``type: callable`` functions of a module in the test's folder that append a
line to ``calls.log`` each time they are called, so a test can count model runs exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TinyRepo = Any  # the tiny_repo fixture's object (tests/integration/conftest.py)

COUNTING = '''\
import json
from pathlib import Path

LOG = Path(__file__).with_name("calls.log")
ROWS = {json.loads(l)["id"]: json.loads(l) for l in
        Path(__file__).with_name("data").joinpath("{which}.jsonl").read_text().splitlines() if l}


def {which}(examples):
    with LOG.open("a") as fh:
        fh.write("{which}\\n")
    return [ROWS[str(ex["id"])]["label"] for ex in examples]
'''


@pytest.fixture
def counted(tiny_repo: TinyRepo, pytester: pytest.Pytester) -> TinyRepo:
    """The tiny repository with callable teacher and student that log each call."""
    for which in ("teacher", "student"):
        (tiny_repo / f"count_{which}.py").write_text(
            COUNTING.replace("{which}", which), "utf-8")
        tiny_repo.replace("suites/tiny.yaml", f"type: predictions\n  path: ../data/{which}.jsonl",
                          f"type: callable\n  target: count_{which}:{which}")
    pytester.syspathinsert(tiny_repo.path)
    return tiny_repo


def calls(repo: TinyRepo) -> list[str]:
    log = repo / "calls.log"
    return log.read_text("utf-8").split() if log.exists() else []


def test_collect_only_runs_no_model(counted: TinyRepo, pytester: pytest.Pytester):
    result = pytester.runpytest("--distill-suite", "suites/tiny.yaml", "--collect-only", "-q",
                                "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["suites/tiny.yaml::quality_ratio[[]overall[]]",
                                 "suites/tiny.yaml::slice_gap[[]lang=de[]]",
                                 "*7 tests collected*"])
    assert calls(counted) == []


def test_deselecting_a_whole_suite_runs_none_of_its_models(counted: TinyRepo,
                                                           pytester: pytest.Pytester):
    result = pytester.runpytest("--distill-suite", "suites/tiny.yaml", "-k", "nothing_is_this",
                                "-p", "no:cacheprovider")
    assert result.ret == 5  # pytest: no test ran
    assert calls(counted) == []


def test_a_suite_runs_once_at_its_first_selected_item(counted: TinyRepo,
                                                      pytester: pytest.Pytester):
    result = pytester.runpytest("--distill-suite", "suites/tiny.yaml", "-k", "slice_gap",
                                "--distill-no-cache", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2, deselected=2)
    assert sorted(calls(counted)) == ["student", "teacher"]


def test_a_suite_that_cannot_run_errors_every_item_with_one_message(counted: TinyRepo,
                                                                    pytester: pytest.Pytester):
    counted.replace("count_student.py", '    return [ROWS[str(ex["id"])]["label"]',
                    '    raise RuntimeError("the student server is down")\n'
                    '    return [ROWS[str(ex["id"])]["label"]')
    result = pytester.runpytest("--distill-suite", "suites/tiny.yaml", "--distill-no-cache",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=7)
    result.stdout.fnmatch_lines([
        "*the suite could not run: suites/tiny.yaml: student.target: count_student:student "
        "raised RuntimeError: the student server is down*"])
    # Collected fine, ran once for all seven items: the teacher answered, the student raised.
    assert calls(counted) == ["teacher", "student"]


def test_collecting_a_transformers_suite_imports_no_torch(tiny_repo: TinyRepo, tmp_path: Path):
    """A suite of transformers models collects without importing torch: nothing is loaded."""
    folder = tiny_repo / "models" / "teacher"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), "utf-8")
    tiny_repo.replace("suites/tiny.yaml", "type: predictions\n  path: ../data/teacher.jsonl",
                      "type: transformers\n  path: ../models/teacher")
    probe = ("import sys, pytest\n"
             "rc = pytest.main(['--distill-suite', 'suites/tiny.yaml', '--collect-only', '-q',"
             " '-p', 'no:cacheprovider'])\n"
             "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
             "sys.exit(rc)\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tiny_repo.path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "7 tests collected" in run.stdout
    assert run.stdout.strip().endswith("no torch")


def test_an_unchanged_timing_is_read_back_and_a_changed_student_is_timed_again(
        counted: TinyRepo, pytester: pytest.Pytester):
    """Latency is stored by (teacher, student, settings, host): a rerun loads no model to time."""
    with (counted / "suites" / "tiny.yaml").open("a") as fh:
        fh.write("economics: {batch_sizes: [2], sample: 4, warmup: 0, repeats: 3, "
                 "latency: {max_repeats: 3}}\n")
    counted.replace("rubrics/tiny.yaml", "  - {name: flips,",
                    "  - {name: speed, metric: latency_improvement, compare: value, min: 0.01}\n"
                    "  - {name: flips,")

    def run() -> dict:
        result = pytester.runpytest("--distill-suite", "suites/tiny.yaml", "--distill-report",
                                    "r.json", "-p", "no:cacheprovider")
        assert result.ret == 1  # slice_gap[lang=de] fails, as always
        doc = json.loads((counted / "r.json").read_text("utf-8"))
        return doc["suites"][0]["economics"]["timing"]["latency"]

    first = run()
    timed = len(calls(counted))
    assert not first["reused"] and timed > 2  # two full runs, then the timed batches
    second = run()
    assert second["reused"] and second == {**first, "reused": True}
    assert len(calls(counted)) == timed  # neither predictions nor timing ran a model
    # The callable's fingerprint is its function's source: edit the function.
    counted.replace("count_student.py", '    with LOG.open("a")',
                    '    # a changed student\n    with LOG.open("a")')
    third = run()
    assert not third["reused"] and len(calls(counted)) > timed
