"""A generation suite on prediction files, end to end through pytest and ``distill run``.

The data: 480 short question-answer examples in two languages and four topics; some examples
accept several references (a list), the rest one (a string). The outputs are fixed and chosen:

- the teacher answers every example with its first reference, except every 16th example
  (``i % 16 == 5``), where it answers a wrong word;
- the student answers like the teacher, except on German date questions (60 examples), where
  it answers the wrong word on 36 of them (``i % 5 < 3``): a pocket ``lang=de & topic=dates``
  that no declared slice names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

TOPICS = ("dates", "places", "people", "numbers")
RUBRIC = """\
schema_version: 1
id: qa-gate
version: 1
defaults: {alpha: 0.05, min_support: 30}
criteria:
  - {name: em_ratio, metric: exact_match, compare: teacher_ratio, min: 0.9, scope: overall}
  - {name: em_gap, metric: exact_match, compare: teacher_delta, min: -0.2, scope: slices}
  - {name: pockets, metric: exact_match, compare: teacher_delta, min: -0.2, scope: discovered}
  - {name: cer, metric: char_error_rate, compare: teacher_delta, max: 0.25, scope: all}
  - {name: fidelity, metric: teacher_match, compare: value, min: 0.8, scope: overall}
  - {name: chrf_corpus, metric: chrf_corpus, compare: teacher_ratio, min: 0.8, scope: overall}
"""


def _rows() -> list[dict[str, object]]:
    rows = []
    for i in range(480):
        lang = "de" if i % 2 else "en"
        topic = TOPICS[(i // 2) % 4]
        answer = f"{topic[:-1]}-{i:03d}"
        ref: object = [answer, answer.upper()] if i % 3 == 0 else answer
        rows.append({"id": f"q{i:03d}", "question": f"({lang}) which {topic[:-1]} is {i}?",
                     "answer": ref, "lang": lang, "topic": topic, "n_chars": len(answer)})
    return rows


def _write(root: Path, student_pocket: bool = True) -> None:
    (root / "pyproject.toml").write_text("", "utf-8")
    for sub in ("data", "suites", "rubrics"):
        (root / sub).mkdir(exist_ok=True)
    rows = _rows()
    teacher, student = [], []
    pocket = 0
    for i, r in enumerate(rows):
        first = r["answer"] if isinstance(r["answer"], str) else r["answer"][0]  # type: ignore[index]
        t_out = "wrong" if i % 16 == 5 else str(first)
        s_out = t_out
        if student_pocket and r["lang"] == "de" and r["topic"] == "dates":
            if pocket % 5 < 3:
                s_out = "wrong"
            pocket += 1
        teacher.append({"id": r["id"], "output": t_out, "finish_reason": "stop",
                        "usage": {"input_tokens": 9, "output_tokens": 3}})
        student.append({"id": r["id"], "output": s_out,
                        "usage": {"input_tokens": 9, "output_tokens": 4}})
    for name, lines in (("eval", rows), ("teacher", teacher), ("student", student)):
        (root / "data" / f"{name}.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    (root / "suites" / "qa.yaml").write_text("""\
schema_version: 1
name: qa
version: "1"
task: generation
data:
  path: ../data/eval.jsonl
  prompt: "Q: {question}\\nA:"
  label: answer
  features: [lang, topic, n_chars]
teacher: {type: predictions, path: ../data/teacher.jsonl}
student: {type: predictions, path: ../data/student.jsonl}
rubric: ../rubrics/qa.yaml
slices:
  - by: lang
discovery: {features: [lang, topic], max_predicates: 2, min_support: 30}
""", "utf-8")
    (root / "rubrics" / "qa.yaml").write_text(RUBRIC, "utf-8")


@pytest.fixture
def qa_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    _write(pytester.path)
    return pytester.path


def test_a_generation_suite_gates_through_pytest(pytester: pytest.Pytester, qa_repo: Path):
    result = pytester.runpytest("--distill-suite", "suites/qa.yaml", "--distill-report",
                                "out/report.json", "-p", "no:cacheprovider")
    assert result.ret == 1
    doc = json.loads((qa_repo / "out" / "report.json").read_text("utf-8"))
    from harness.spec import validate_document

    validate_document(doc, "report", "out/report.json")  # usage, health, scope keep to it
    suite = doc["suites"][0]
    assert suite["task"] == "generation"
    checks = {c["id"]: c for c in suite["checks"]}
    # The pocket is inside lang=de, which as a whole loses 15 points: within its margin.
    assert checks["qa::em_gap[lang=de]"]["verdict"] == "pass"
    assert checks["qa::em_gap[lang=de]"]["value"] == pytest.approx(-36 / 240)
    pockets = checks["qa::pockets[discovered]"]
    assert pockets["verdict"] == "fail"
    confirmed = [p for p in suite["pockets"] if p["confirmed"]]
    assert [p["slice"] for p in confirmed][:1] == ["lang=de & topic=dates"]
    assert confirmed[0]["delta"] == pytest.approx(-36 / 60)
    # Paired exact test on the 0/1 exact-match values; a lower-is-better metric reads right.
    assert "McNemar" in checks["qa::em_ratio[overall]"]["test"] or checks[
        "qa::em_ratio[overall]"]["test"]
    cer = checks["qa::cer[overall]"]
    assert cer["value"] > 0 and cer["threshold"] == {"max": 0.25}
    assert checks["qa::fidelity[overall]"]["value"] == pytest.approx(1 - 36 / 480)
    assert suite["teacher"]["usage"]["output_tokens"] == 3 * 480
    assert suite["teacher"]["truncated_rate"] == 0.0
    # Every example the teacher got wrong disagrees with each of its references.
    assert suite["teacher_audit"]["n_suspect"] == 30
    result.stdout.fnmatch_lines(["*FAILED suites/qa.yaml::pockets[[]discovered[]]*"])


def test_distill_run_on_a_generation_suite(qa_repo: Path):
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml"],
                         cwd=qa_repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "lang=de & topic=dates" in run.stdout
    _write(qa_repo, student_pocket=False)
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml",
                          "--cache", ".distill-cache"], cwd=qa_repo, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_classification_metric_on_a_generation_suite_is_refused_at_load(qa_repo: Path):
    rubric = qa_repo / "rubrics" / "qa.yaml"
    rubric.write_text(RUBRIC.replace("metric: exact_match, compare: teacher_ratio",
                                     "metric: accuracy, compare: teacher_ratio"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml"],
                         cwd=qa_repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("distill: rubrics/qa.yaml: criteria[0].metric: criterion 'em_ratio': "
                               "accuracy is a classification metric; a generation suite takes: ")
    assert "exact_match" in lines[0] and "chrf" in lines[0]


@pytest.mark.parametrize(("edit", "expected"), [
    ('"answer": "place-002"', "reference field 'answer' is 42; expected a string or a non-empty "
                              "list of strings"),
    ("{question}", "prompt placeholder {missing} names no field of data/eval.jsonl"),
])
def test_bad_generation_inputs_are_one_line(qa_repo: Path, edit: str, expected: str):
    if edit.startswith('"answer"'):
        path = qa_repo / "data" / "eval.jsonl"
        text = path.read_text("utf-8")
        assert edit in text
        path.write_text(text.replace(edit, '"answer": 42', 1), "utf-8")
    else:
        path = qa_repo / "suites" / "qa.yaml"
        path.write_text(path.read_text("utf-8").replace(edit, "{missing}"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml"],
                         cwd=qa_repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], run.stderr


def test_models_priced_by_the_token_cost_their_measured_usage(qa_repo: Path):
    suite = qa_repo / "suites" / "qa.yaml"
    text = suite.read_text("utf-8")
    text = text.replace("teacher: {type: predictions, path: ../data/teacher.jsonl}",
                        "teacher: {type: predictions, path: ../data/teacher.jsonl, metadata: "
                        "{usd_per_million_tokens: {input: 10, output: 30}}}")
    text = text.replace("student: {type: predictions, path: ../data/student.jsonl}",
                        "student: {type: predictions, path: ../data/student.jsonl, metadata: "
                        "{usd_per_million_tokens: {input: 1, output: 2}, "
                        "training: {usd: 163}}}")
    suite.write_text(text, "utf-8")
    rubric = qa_repo / "rubrics" / "qa.yaml"
    rubric.write_text(RUBRIC + "  - {name: cheaper, metric: cost_reduction, compare: value, "
                      "min: 0.95}\n", "utf-8")
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml",
                          "--report", "out/r.json"], cwd=qa_repo, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1, run.stderr
    doc = json.loads((qa_repo / "out" / "r.json").read_text("utf-8"))["suites"][0]
    tokens = doc["economics"]["tokens"]
    # 9 input and 3 output tokens a request at $10 / $30 per million tokens: $180 per million
    # requests; the student's 9 and 4 at $1 / $2: $17.
    assert tokens["teacher"]["cost_per_million_requests"] == pytest.approx(180.0)
    assert tokens["student"]["cost_per_million_requests"] == pytest.approx(17.0)
    check = next(c for c in doc["checks"] if c["criterion"] == "cheaper")
    assert check["value"] == pytest.approx(1 - 17 / 180)
    assert check["verdict"] == "fail"  # 0.906 < 0.95, a point value
    # $163 of training repaid by $163 saved per million requests: after a million requests.
    timing = doc["economics"]["timing"]
    assert timing["payback_predictions"] == pytest.approx(1e6)
