"""A warm run reads back what its unchanged inputs gave, and recomputes what a change touches.

The suite: a generation suite on fixed prediction files (a teacher, the gated student and a
second candidate), with distillation data (coverage: TF-IDF and KMeans), traffic data (drift
tests), declared and discovered slices, text metrics and a frontier plot. A second
``distill run`` on the same cache must give the same report and plot without importing scipy,
scikit-learn or matplotlib (every test, pocket search, coverage and plot comes from the memo);
after a change of one student's outputs or of the rubric, a cached run must give exactly the
report of a run without any cache (nothing stale reused).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
TOPICS = ("dates", "places", "people", "numbers")
HEAVY = ("scipy", "sklearn", "matplotlib")
# JSON is YAML: the rubric as data, so that a test can change one threshold.
RUBRIC: dict[str, object] = {
    "schema_version": 1, "id": "warm-gate", "version": 1,
    "defaults": {"alpha": 0.05, "min_support": 30},
    "criteria": [
        {"name": "quality", "metric": "exact_match", "compare": "teacher_ratio", "min": 0.9,
         "scope": "overall"},
        {"name": "gaps", "metric": "exact_match", "compare": "teacher_delta", "min": -0.2,
         "scope": "slices"},
        {"name": "found", "metric": "exact_match", "compare": "teacher_delta", "min": -0.2,
         "scope": "discovered"},
        {"name": "edits", "metric": "token_error_rate", "compare": "teacher_delta", "max": 0.25,
         "scope": "slices"},
        {"name": "like_teacher", "metric": "teacher_chrf", "compare": "value", "min": 0.8,
         "scope": "overall", "severity": "warn"},
    ],
}


SUITE: dict[str, object] = {
    "schema_version": 1, "name": "qa", "version": "1", "task": "generation",
    "data": {"path": "../data/eval.jsonl", "prompt": "Q: {question}\nA:", "label": "answer",
             "features": ["lang", "topic"]},
    "distillation_data": {"path": "../data/distill.jsonl", "prompt": "Q: {question}\nA:",
                          "features": ["lang", "topic"]},
    "teacher": {"type": "predictions", "path": "../data/teacher.jsonl",
                "metadata": {"params": 1_000_000}},
    "student": {"type": "predictions", "path": "../data/small.jsonl",
                "metadata": {"params": 300_000}},
    "students": {"tiny": {"type": "predictions", "path": "../data/tiny.jsonl",
                          "metadata": {"params": 100_000}}},
    "traffic_data": {"path": "../data/traffic.jsonl", "prompt": "Q: {question}\nA:",
                     "features": ["lang", "topic"]},
    "rubric": "../rubrics/qa.yaml",
    "slices": [{"by": "lang"}, {"by": "topic"}],
    "discovery": {"features": ["lang", "topic"], "max_predicates": 2, "min_support": 30},
}


def _rows(n: int, offset: int = 0) -> list[dict[str, object]]:
    """Questions in two languages on four topics; the answer names the topic and the row."""
    return [{"id": f"q{i:03d}", "lang": ("en", "de")[i % 2], "topic": TOPICS[(i // 2) % 4],
             "question": f"({('en', 'de')[i % 2]}) which {TOPICS[(i // 2) % 4][:-1]} is {i}?",
             "answer": f"{TOPICS[(i // 2) % 4][:-1]}-{i:03d}"} for i in range(offset, offset + n)]


def _outputs(rows: list[dict[str, object]], wrong: set[int]) -> list[dict[str, object]]:
    return [{"id": r["id"], "output": "wrong" if i in wrong else str(r["answer"])}
            for i, r in enumerate(rows)]


def _jsonl(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for sub in ("data", "suites", "rubrics", "out"):
        (tmp_path / sub).mkdir()
    (tmp_path / "pyproject.toml").write_text("", "utf-8")
    rows = _rows(480)
    pocket = {i for i, r in enumerate(rows) if r["lang"] == "de" and r["topic"] == "dates"
              and i % 5 < 3}
    _jsonl(tmp_path / "data" / "eval.jsonl", rows)
    _jsonl(tmp_path / "data" / "distill.jsonl",
           [r for r in _rows(200, offset=1000) if r["topic"] != "numbers"])
    # traffic: recent questions, more of them on dates (drift), answered by every model too
    traffic = [r for r in _rows(160, offset=2000) if r["topic"] != "people"]
    _jsonl(tmp_path / "data" / "traffic.jsonl", [{k: v for k, v in r.items() if k != "answer"}
                                                 for r in traffic])
    answered = rows + traffic
    _jsonl(tmp_path / "data" / "teacher.jsonl", _outputs(answered, {i for i in range(480)
                                                                     if i % 16 == 5}))
    _jsonl(tmp_path / "data" / "small.jsonl", _outputs(answered, pocket | {7, 9, 481}))
    _jsonl(tmp_path / "data" / "tiny.jsonl",
           _outputs(answered, pocket | {i for i in range(0, 600, 6)}))
    (tmp_path / "suites" / "qa.yaml").write_text(json.dumps(SUITE, indent=1), "utf-8")
    (tmp_path / "rubrics" / "qa.yaml").write_text(json.dumps(RUBRIC, indent=1), "utf-8")
    return tmp_path


def _run(repo: Path, name: str, *flags: str) -> tuple[dict[str, object], set[str]]:
    """``distill run`` into out/NAME.json; the report and the heavy packages it imported."""
    import os

    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("GITHUB_ACTIONS", None)
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness.cli", "run",
                          "suites/qa.yaml", "--report", f"out/{name}.json", "--quiet", *flags],
                         cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in run.stderr.splitlines() if line.startswith("import time:")}
    return json.loads((repo / "out" / f"{name}.json").read_text("utf-8")), imported & set(HEAVY)


def _without_cache_flags(doc: dict[str, object]) -> dict[str, object]:
    """``doc`` without each model's ``cached`` flag (whether its outputs came from the cache:
    the one field a warm run may change)."""
    doc = json.loads(json.dumps(doc))
    for suite in doc["suites"]:  # type: ignore[attr-defined]
        for role in ("teacher", "student"):
            suite[role].pop("cached", None)
    return doc


def test_a_warm_run_imports_no_scipy_and_gives_the_same_report(repo: Path):
    cold, heavy_cold = _run(repo, "cold", "--cache", "cache")
    assert set(HEAVY) <= heavy_cold  # the cold run did compute: tests, coverage, the plot
    png = (repo / "out" / "qa-frontier.png").read_bytes()
    memo = repo / "cache" / "memo"
    assert {p.name for p in memo.iterdir()} >= {"stats", "pockets", "coverage", "frontier",
                                               "metrics", "audit", "traffic"}
    suite = cold["suites"][0]  # type: ignore[index]
    assert suite["coverage"]["clusters"]  # type: ignore[index]
    assert suite["traffic"]["drift"]  # type: ignore[index]

    warm, heavy_warm = _run(repo, "warm", "--cache", "cache")
    assert heavy_warm == set()
    assert _without_cache_flags(warm) == _without_cache_flags(cold)
    assert (repo / "out" / "qa-frontier.png").read_bytes() == png


def test_a_warm_run_does_not_parse_the_distillation_data(repo: Path, monkeypatch):
    from harness import data as data_module
    from harness.options import Options
    from harness.runner import run_suite

    options = Options(cache_dir=repo / "cache", progress=False)
    cold = run_suite(repo / "suites" / "qa.yaml", options)
    read: list[str] = []
    load = data_module.load_dataset

    def recording(spec, *args, **kwargs):
        read.append(Path(spec.path).name)
        return load(spec, *args, **kwargs)

    monkeypatch.setattr(data_module, "load_dataset", recording)
    warm = run_suite(repo / "suites" / "qa.yaml", options)
    assert sorted(read) == ["eval.jsonl", "traffic.jsonl"]
    assert warm.coverage == cold.coverage and warm.coverage_gaps == cold.coverage_gaps


@pytest.mark.parametrize("change", ["student", "rubric", "distillation"])
def test_a_change_recomputes_what_depends_on_it_and_nothing_stale(repo: Path, change: str):
    _run(repo, "cold", "--cache", "cache")
    if change == "student":  # the candidate answers one more German date question right
        path = repo / "data" / "tiny.jsonl"
        lines = path.read_text("utf-8").splitlines()
        first_wrong = next(i for i, line in enumerate(lines) if '"wrong"' in line)
        lines[first_wrong] = lines[first_wrong].replace('"wrong"', '"date-XXX"')
        path.write_text("\n".join(lines) + "\n", "utf-8")
    elif change == "distillation":  # the students were distilled on fewer German questions
        path = repo / "data" / "distill.jsonl"
        lines = path.read_text("utf-8").splitlines()
        path.write_text("\n".join(ln for i, ln in enumerate(lines)
                                  if '"de"' not in ln or i % 3) + "\n", "utf-8")
    else:  # a stricter margin on the slices: other thresholds, other tests
        rubric = json.loads(json.dumps(RUBRIC))
        rubric["version"] = 2
        rubric["criteria"][1]["min"] = -0.1
        (repo / "rubrics" / "qa.yaml").write_text(json.dumps(rubric, indent=1), "utf-8")
    before = {p for p in (repo / "cache" / "memo").rglob("*") if p.is_file()}
    cached, heavy = _run(repo, "cached", "--cache", "cache")
    fresh, _ = _run(repo, "fresh", "--no-cache")
    assert _without_cache_flags(cached) == _without_cache_flags(fresh)
    added = {p for p in (repo / "cache" / "memo").rglob("*") if p.is_file()} - before
    assert added and "scipy" in heavy  # what the change touched was recomputed
    if change == "rubric":  # outputs unchanged: no metric value, coverage or pocket search anew
        assert {p.parent.name for p in added} <= {"stats", "frontier"}
    if change == "distillation":  # coverage only: the models' outputs and tests are as they were
        assert {p.parent.name for p in added} == {"coverage"}
