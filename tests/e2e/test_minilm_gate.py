"""The real MiniLM-L6 and a two-layer student on real reviews, through ``pytest --distill-suite``.

A temporary repository holds the suite, the rubric, 120 review sentences of the Rotten Tomatoes
corpus and the models of ``minilm_models`` (see conftest.py). Three runs of ``python -m pytest``
in a child process, the path a user runs:

1. cold: items named as DESIGN says, a report that validates, the models' real facts;
2. the student alone changed (a one-layer student saved over the two-layer one): the teacher's
   outputs come from the cache and its model runs zero times;
3. ``--distill-no-cache``: both models run again.

A plugin passed with ``-p`` counts the models' forward calls: it hooks every model the
transformers adapter loads and writes one line per forward call (role and batch rows).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

N_EVAL = 120
BATCH = 16
SUITE = "suites/minilm.yaml"

SUITE_YAML = """\
schema_version: 1
name: minilm
version: "1"
task: classification
data:
  path: ../data/eval.jsonl
  id: id
  input: text
  label: label
  features: [n_words, movie_name, length]
labels: [fresh, rotten]
teacher:
  type: transformers
  path: ../models/teacher
  batch_size: {batch}
  max_length: 64
  device: cpu
student:
  type: transformers
  path: ../models/student
  batch_size: {batch}
  max_length: 64
  device: cpu
rubric: ../rubrics/minilm.yaml
slices:
  - name: short
    where: {{n_words: {{lt: 15}}}}
  - by: length
  - name: top_movies
    where: {{movie_name: {{in: {movies}}}}}
discovery:
  features: [length, n_words]
  max_predicates: 1
  min_support: 30
"""

RUBRIC_YAML = """\
schema_version: 1
id: minilm-gate
version: 1
defaults: {alpha: 0.05, min_support: 10, decision: significant}
criteria:
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.9, scope: overall}
  - {name: slice_gap, metric: accuracy, compare: teacher_delta, min: -0.1, scope: slices}
  - {name: pockets, metric: accuracy, compare: teacher_delta, min: -0.1, scope: discovered}
  - {name: flips, metric: negative_flip_rate, compare: value, max: 0.2, scope: overall}
  - {name: size, metric: size_reduction, compare: value, min: 0.3}
"""

# Loaded with -p in the child pytest: one line per forward call of a model the adapter loads.
COUNTER_PLUGIN = '''\
"""Counts forward calls of the transformers adapter's models (a test helper)."""
import os

from harness.models.transformers import TransformersModel

_load = TransformersModel._load


def _counting_load(self):
    fresh = self._model is None
    _load(self)
    if not fresh:
        return
    role, log = self.role, os.environ["DISTILL_FORWARD_LOG"]

    def hook(module, args, kwargs, output):
        ids = kwargs.get("input_ids", args[0] if args else None)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{role} {ids.shape[0]}\\n")

    self._model.register_forward_hook(hook, with_kwargs=True)


TransformersModel._load = _counting_load
'''


def _length(n_words: int) -> str:
    return "short" if n_words < 15 else "medium" if n_words < 25 else "long"


@dataclass
class Run:
    """One child pytest run: exit status, output, report and counted forward rows per role."""

    ret: int
    output: str
    report: dict[str, Any]
    forward_rows: Counter[str]
    forward_calls: Counter[str]
    items: dict[str, str]  # node id -> PASSED / FAILED

    @property
    def suite(self) -> dict[str, Any]:
        return self.report["suites"][0]


@dataclass
class GateRepo:
    root: Path
    expected_items: set[str]
    runs: dict[str, Run]


def _write_repo(root: Path, reviews: list[Any], models: Any) -> set[str]:
    """The repository; returns the node ids DESIGN's naming gives its checks."""
    (root / "pyproject.toml").write_text('[project]\nname = "minilm-gate"\nversion = "0"\n')
    # Even positions, evenly spread over the corpus (conftest trains the head on odd ones).
    step = len(reviews) // N_EVAL
    step += step % 2
    chosen = reviews[::step][:N_EVAL]
    assert len(chosen) == N_EVAL and {r.label for r in chosen} == {"fresh", "rotten"}
    rows = []
    for r in chosen:
        n_words = len(r.text.split())
        rows.append({"id": r.id, "text": r.text, "label": r.label, "n_words": n_words,
                     "movie_name": r.movie_name, "length": _length(n_words)})
    (root / "data").mkdir()
    (root / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    movies = sorted(Counter(r["movie_name"] for r in rows).most_common(3))
    movie_names = [m for m, _ in movies]
    (root / "suites").mkdir()
    (root / SUITE).write_text(SUITE_YAML.format(batch=BATCH, movies=json.dumps(movie_names)))
    (root / "rubrics").mkdir()
    (root / "rubrics" / "minilm.yaml").write_text(RUBRIC_YAML)
    (root / "models").mkdir()
    shutil.copytree(models.teacher, root / "models" / "teacher")
    shutil.copytree(models.student_l2, root / "models" / "student")

    lengths = sorted({r["length"] for r in rows})
    slices = ["short", *(f"length={v}" for v in lengths), "top_movies"]
    return {f"{SUITE}::quality_ratio[overall]", f"{SUITE}::flips[overall]", f"{SUITE}::size[overall]",
            f"{SUITE}::pockets[discovered]", *(f"{SUITE}::slice_gap[{s}]" for s in slices)}


def _run(root: Path, env: dict[str, str], name: str, *flags: str) -> Run:
    log = root.parent / f"forward-{name}.log"
    log.write_text("")
    report = root.parent / f"report-{name}.json"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "distill_forward_counter",
           "-v", "--distill-suite", SUITE, "--distill-cache", ".distill-cache",
           "--distill-report", str(report), *flags]
    env = {**env, "DISTILL_FORWARD_LOG": str(log),
           "PYTHONPATH": str(root.parent / "plugins")}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), f"run {name} did not gate (exit {proc.returncode}):\n{output}"
    rows: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        role, n = line.split()
        rows[role] += int(n)
        calls[role] += 1
    items = dict(re.findall(r"^(\S+::\S+) (PASSED|FAILED)", proc.stdout, flags=re.M))
    return Run(ret=proc.returncode, output=output, report=json.loads(report.read_text()),
               forward_rows=rows, forward_calls=calls, items=items)


@pytest.fixture(scope="module")
def gate_repo(tmp_path_factory, rotten_tomatoes, minilm_models, child_env) -> GateRepo:
    base = tmp_path_factory.mktemp("minilm_gate")
    (base / "plugins").mkdir()
    (base / "plugins" / "distill_forward_counter.py").write_text(COUNTER_PLUGIN)
    root = base / "repo"
    root.mkdir()
    expected = _write_repo(root, rotten_tomatoes, minilm_models)

    runs = {"cold": _run(root, child_env, "cold")}
    # The pull request changes the student only: a one-layer student saved over the old one.
    shutil.rmtree(root / "models" / "student")
    shutil.copytree(minilm_models.student_l1, root / "models" / "student")
    runs["student_changed"] = _run(root, child_env, "student_changed")
    runs["no_cache"] = _run(root, child_env, "no_cache", "--distill-no-cache")
    return GateRepo(root=root, expected_items=expected, runs=runs)


def test_items_are_named_as_design_says(gate_repo):
    for name, run in gate_repo.runs.items():
        assert set(run.items) == gate_repo.expected_items, (name, run.output)
        check_ids = {c["id"] for c in run.suite["checks"]}
        assert check_ids == {i.replace(f"{SUITE}::", "minilm::") for i in gate_repo.expected_items}
        verdicts = {c["id"].split("::")[1]: c["verdict"] for c in run.suite["checks"]}
        # An item fails exactly when its check failed or errored; exit 1 exactly then.
        for node, outcome in run.items.items():
            failed = verdicts[node.split("::")[1]] in ("fail", "error")
            assert (outcome == "FAILED") == failed, (name, node, verdicts)
        assert run.ret == (1 if any(v in ("fail", "error") for v in verdicts.values()) else 0)


def test_report_validates_and_has_the_models_facts(gate_repo, minilm_models):
    import jsonschema

    from harness.spec import load_schema

    run = gate_repo.runs["cold"]
    jsonschema.validate(run.report, load_schema("report"))
    for other in ("student_changed", "no_cache"):
        jsonschema.validate(gate_repo.runs[other].report, load_schema("report"))
    suite = run.suite
    assert suite["n"] == N_EVAL
    params = minilm_models.params
    # The real MiniLM-L6 (22,713,216 parameters) plus a 384x2 head: counted from the loaded model.
    assert params["teacher"] > 22_713_216
    assert suite["teacher"]["params"] == params["teacher"]
    assert suite["student"]["params"] == params["l2"] < params["teacher"]
    teacher_weights = (gate_repo.root / "models" / "teacher" / "model.safetensors").stat().st_size
    assert suite["teacher"]["bytes"] >= teacher_weights > 0
    assert 0 < suite["student"]["bytes"] < suite["teacher"]["bytes"]
    assert gate_repo.runs["student_changed"].suite["student"]["params"] == params["l1"]
    # The trained head makes the teacher better than a coin on these reviews.
    assert suite["teacher_audit"]["accuracy"] > 0.5


def test_cold_run_runs_each_model_once_over_the_data(gate_repo):
    run = gate_repo.runs["cold"]
    assert run.forward_rows == {"teacher": N_EVAL, "student": N_EVAL}, run.output
    assert run.forward_calls == {"teacher": -(-N_EVAL // BATCH), "student": -(-N_EVAL // BATCH)}
    assert run.suite["teacher"]["cached"] is False
    assert run.suite["student"]["cached"] is False


def test_a_changed_student_runs_the_teacher_zero_times(gate_repo):
    cold, run = gate_repo.runs["cold"], gate_repo.runs["student_changed"]
    assert run.forward_rows["teacher"] == 0, run.output
    assert run.suite["teacher"]["cached"] is True
    assert run.suite["teacher"]["fingerprint"] == cold.suite["teacher"]["fingerprint"]
    assert run.forward_rows["student"] == N_EVAL
    assert run.suite["student"]["cached"] is False
    assert run.suite["student"]["fingerprint"] != cold.suite["student"]["fingerprint"]


def test_no_cache_runs_both_models(gate_repo):
    run = gate_repo.runs["no_cache"]
    assert run.forward_rows == {"teacher": N_EVAL, "student": N_EVAL}, run.output
    assert run.suite["teacher"]["cached"] is False
    assert run.suite["student"]["cached"] is False
    # Served from the cache or recomputed, the teacher's outputs are the same.
    def teacher_accuracy(r: Run) -> float:
        return r.suite["teacher_audit"]["accuracy"]

    assert teacher_accuracy(run) == teacher_accuracy(gate_repo.runs["student_changed"])
