"""An LLM teacher that labels (the common "an LLM labels, a small model learns"), through
``distill run`` against a real local server answering in messy forms: exact invalid shares,
the teacher's invalid rate gated, a ``labels_map`` edit that asks nothing and changes the
verdicts it should, invalid teacher answers left out of teacher-delta checks, the audit's
suspects, and the usage counts of cold, warm and resumed runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from endpoint_helpers import write_suite
from fake_openai import usage_for

from harness.cli import main

N = 40
TEXTS = [f"review number {i} of the film" for i in range(N)]
GOLD = ["fresh" if i % 2 == 0 else "rotten" for i in range(N)]
FRESH_FORMS = ["Fresh.", "**Fresh**", "FRESH!", "Answer: fresh", "positive"]
ROTTEN_FORMS = ["  ROTTEN\n", "Rotten.", "*rotten*", "Label: Rotten", "'rotten'"]
UNDECIDED = {7: "I cannot decide", 21: "I cannot decide", 30: "Fresh or rotten?"}
#: "positive" matches a label only through labels_map.
POSITIVE = [i for i in range(N) if i % 2 == 0 and (i // 2) % 5 == 4 and i not in UNDECIDED]
STUDENT_WRONG = {0, 2, 4, 6}  # the teacher answers each of these validly


def said(i: int) -> str:
    if i in UNDECIDED:
        return UNDECIDED[i]
    forms = FRESH_FORMS if GOLD[i] == "fresh" else ROTTEN_FORMS
    return forms[(i // 2) % 5]


CRITERIA: list[dict[str, Any]] = [
    {"name": "teacher_valid", "metric": "invalid_rate", "compare": "value", "model": "teacher",
     "max": 0.1, "scope": "overall", "decision": "point"},
    {"name": "vs_teacher", "metric": "accuracy", "compare": "teacher_delta", "min": 0.0,
     "scope": "overall", "decision": "point"},
    {"name": "vs_valid_teacher", "metric": "accuracy", "compare": "teacher_delta", "min": -0.05,
     "scope": "overall", "decision": "point", "teacher_invalid": "exclude"},
]


def labelling_suite(root: Path, url: str, *, labels_map: dict[str, str] | None = None,
                    max_connections: int = 4, retries: int = 2,
                    criteria: list[dict[str, Any]] | None = None) -> Path:
    rows = [{"id": f"r{i}", "text": t, "reference": g, "half": "first" if i < N // 2 else "second"}
            for i, (t, g) in enumerate(zip(TEXTS, GOLD, strict=True))]
    (root / "data").mkdir(exist_ok=True)
    student = [{"id": f"r{i}", "label": ("rotten" if g == "fresh" else "fresh")
                if i in STUDENT_WRONG else g} for i, g in enumerate(GOLD)]
    (root / "data" / "student.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in student), "utf-8")
    teacher: dict[str, Any] = {"type": "openai", "base_url": url, "model": "fake-teacher",
                               "max_connections": max_connections, "retries": retries,
                               "timeout_s": 5, "generation": {"max_new_tokens": 8}}
    if labels_map is not None:
        teacher["labels_map"] = labels_map
    return write_suite(root, "labels", task="classification", labels=["fresh", "rotten"],
                       rows=rows, teacher=teacher,
                       student={"type": "predictions", "path": "../data/student.jsonl"},
                       criteria=criteria or CRITERIA,
                       extra={"data": {"path": "../data/labels.jsonl", "id": "id", "input": "text",
                                       "label": "reference", "features": ["half"]},
                              "slices": [{"by": "half"}], "discovery": {"min_support": 5}})


def run(suite: Path, report: str, *more: str) -> tuple[int, dict[str, Any]]:
    code = main(["run", str(suite), "--report", report, *more])
    return code, json.loads(Path(report).read_text("utf-8"))["suites"][0]


def checks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["criterion"]: c for c in doc["checks"]}


def test_messy_answers_the_teacher_gate_and_a_labels_map_edit_that_asks_nothing(
        fake_openai, repo, capsys):
    server = fake_openai(labels={t: said(i) for i, t in enumerate(TEXTS)})
    suite = labelling_suite(repo, server.base_url)
    invalid = sorted([*UNDECIDED, *POSITIVE])
    assert len(invalid) == 7

    code, doc = run(suite, "cold.json", "--markdown", "cold.md")
    out, err = capsys.readouterr()
    assert code == 1, err
    assert sum(server.requests.values()) == N
    # Not a terminal (a CI log): one line for the stage, its requests and their rate.
    (stage,) = [line for line in out.splitlines() if line.startswith("teacher: ")]
    assert stage.startswith(f"teacher: {N}/{N} requests in ") and stage.endswith(" requests/s")
    assert "\r" not in out and err == ""
    # The terminal and the Markdown say how many answers were invalid and show a few.
    shown = ('r7 "I cannot decide", r8 "positive", r18 "positive", r21 "I cannot decide", '
             'r28 "positive"')
    assert f"  teacher: 7 (17.5%), e.g. {shown}" in out.splitlines()
    assert main(["validate", "cold.json"]) == 0, capsys.readouterr()
    markdown = Path("cold.md").read_text("utf-8")
    assert "### Invalid answers" in markdown and f"| teacher | 7 | 17.5% | {shown} |" in markdown
    assert "student:" not in out.split("invalid answers")[1].split("\n\n")[0]
    teacher = doc["teacher"]
    # "Fresh.", "**Fresh**", "FRESH!", "Answer: fresh", "Label: Rotten", "'rotten'" all match;
    # "I cannot decide", "Fresh or rotten?" (two labels) and the unmapped "positive" do not.
    assert teacher["invalid_rate"] == 7 / N
    assert teacher["usage"]["requests"] == N and teacher["usage"]["cached"] == 0
    assert teacher["usage"]["input_tokens"] == sum(usage_for(t)[0] for t in TEXTS)
    assert teacher["invalid"]["n"] == 7 and teacher["invalid"]["share"] == 7 / N
    assert teacher["invalid"]["examples"][0] == {"id": "r7", "answer": "I cannot decide"}
    by = checks(doc)
    # The teacher's own invalid rate, gated: 0.175 is above its max of 0.1.
    assert by["teacher_valid"]["value"] == 7 / N and by["teacher_valid"]["verdict"] == "fail"
    assert by["teacher_valid"]["model"] == "teacher"
    assert by["teacher_valid"]["message"].startswith("invalid_rate (the teacher's own) = 0.1750")
    # Counted as teacher errors, invalid answers loosen a teacher-delta check:
    # student 36/40 against teacher 33/40.
    assert by["vs_teacher"]["value"] == pytest.approx(36 / N - 33 / N)
    assert by["vs_teacher"]["verdict"] == "pass"
    # Left out, the teacher is right on all 33 it answered, the student on 29 of them.
    assert by["vs_valid_teacher"]["excluded"] == 7 and by["vs_valid_teacher"]["n"] == 33
    assert by["vs_valid_teacher"]["value"] == pytest.approx(29 / 33 - 1.0)
    assert by["vs_valid_teacher"]["verdict"] == "fail"
    # The audit lists the invalid teacher answers among its suspects, as the teacher wrote them.
    audit = doc["teacher_audit"]
    assert audit["invalid_ids"] == [f"r{i}" for i in invalid] and audit["n_invalid"] == 7
    suspects = {s["id"]: s for s in audit["suspects"]}
    assert suspects["r30"]["invalid"] is True and suspects["r30"]["answer"] == "Fresh or rotten?"
    assert suspects["r8"]["answer"] == "positive" and suspects["r8"]["teacher"] == "<invalid>"
    assert set(audit["suspect_ids"]) >= {f"r{i}" for i in invalid}

    # A labels_map edit re-decodes the stored raw answers: no request at all.
    suite = labelling_suite(repo, server.base_url, labels_map={"positive": "fresh"})
    code, doc = run(suite, "mapped.json")
    assert sum(server.requests.values()) == N
    teacher = doc["teacher"]
    assert teacher["usage"]["requests"] == 0 and teacher["usage"]["cached"] == N
    assert teacher["usage"]["input_tokens"] == sum(usage_for(t)[0] for t in TEXTS)
    assert teacher["invalid_rate"] == 3 / N
    by = checks(doc)
    assert by["teacher_valid"]["value"] == 3 / N and by["teacher_valid"]["verdict"] == "pass"
    # The teacher now right on 37: the student's 36 no longer meets "at least as good".
    assert by["vs_teacher"]["value"] == pytest.approx(36 / N - 37 / N)
    assert by["vs_teacher"]["verdict"] == "fail"
    assert by["vs_valid_teacher"]["excluded"] == 3 and by["vs_valid_teacher"]["n"] == 37
    assert doc["teacher_audit"]["invalid_ids"] == [f"r{i}" for i in sorted(UNDECIDED)]
    assert code == 1


def test_usage_after_cold_warm_and_resumed_runs(fake_openai, repo, capsys):
    down = {"on": True}
    server = fake_openai(lambda p, attempt: "400" if down["on"] and p == TEXTS[25] else None,
                         labels={t: said(i) for i, t in enumerate(TEXTS)})
    suite = labelling_suite(repo, server.base_url, max_connections=1, retries=0)
    # The server refuses example 25: the run ends (exit 2), the 25 answered are kept.
    assert main(["run", str(suite)]) == 2
    assert "the 25 answered are kept" in capsys.readouterr().err
    assert sum(server.requests.values()) == 26
    down["on"] = False
    _, doc = run(suite, "resumed.json")
    usage = doc["teacher"]["usage"]
    assert (usage["requests"], usage["cached"]) == (15, 25)  # what the resumed run really did
    assert usage["input_tokens"] == sum(usage_for(t)[0] for t in TEXTS)  # every answer behind it
    assert doc["teacher"]["cached"] is False
    assert sum(server.requests.values()) == 26 + 15
    _, doc = run(suite, "warm.json")
    usage = doc["teacher"]["usage"]
    assert (usage["requests"], usage["cached"]) == (0, N)
    assert usage["output_tokens"] == sum(usage_for(t)[1] for t in TEXTS)
    assert doc["teacher"]["cached"] is True
    assert sum(server.requests.values()) == 26 + 15
    assert main(["run", str(suite), "--report", "cold.json", "--no-cache"]) in (0, 1)
    usage = json.loads(Path("cold.json").read_text("utf-8"))["suites"][0]["teacher"]["usage"]
    assert (usage["requests"], usage["cached"]) == (N, 0)


def test_label_pattern_reads_a_model_that_explains_first(fake_openai, repo):
    answers = {t: (f"The review sounds upbeat. Label: {g}" if i % 3 else
                   "Label: fresh, or maybe Label: rotten") for i, (t, g)
               in enumerate(zip(TEXTS, GOLD, strict=True))}
    server = fake_openai(labels=answers)
    suite = labelling_suite(repo, server.base_url)
    doc = yaml.safe_load(suite.read_text("utf-8"))
    doc["teacher"]["label_pattern"] = r"Label:\s*(\w+)"
    suite.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    _, report = run(suite, "pattern.json")
    ambiguous = len([i for i in range(N) if i % 3 == 0])  # two labels named: invalid
    assert report["teacher"]["invalid_rate"] == ambiguous / N
    # A bad pattern is a spec error before any request.
    doc["teacher"]["label_pattern"] = "Label: ("
    suite.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    before = sum(server.requests.values())
    assert main(["run", str(suite)]) == 2
    assert sum(server.requests.values()) == before


@pytest.mark.parametrize(("change", "message"), [
    ({"compare": "teacher_delta", "min": -0.1},
     "criteria[0].model: model: teacher reads the teacher's own metric: it takes compare: value"),
    ({"metric": "agreement", "min": 0.5, "max": None},
     "criteria[0].model: model: teacher needs a metric of the teacher's own outputs"),
    ({"scope": "discovered"}, "criteria[0].scope: model: teacher takes scope overall, slices or all"),
    ({"model": "student", "teacher_invalid": "exclude"},
     "criteria[0].teacher_invalid: teacher_invalid applies to teacher_delta / teacher_ratio"),
    ({"model": "judge"}, "criteria[0].model"),
])
def test_teacher_keys_are_checked_when_the_rubric_loads(fake_openai, repo, capsys, change,
                                                        message):
    server = fake_openai(labels={t: said(i) for i, t in enumerate(TEXTS)})
    suite = labelling_suite(repo, server.base_url)
    rubric = repo / "rubrics" / "labels.yaml"
    doc = yaml.safe_load(rubric.read_text("utf-8"))
    doc["criteria"][0].update(change)
    doc["criteria"][0] = {k: v for k, v in doc["criteria"][0].items() if v is not None}
    rubric.write_text(yaml.safe_dump(doc), "utf-8")
    assert main(["run", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distill: rubrics/labels.yaml: ") and message in err, err
    assert sum(server.requests.values()) == 0  # before any request


def test_a_pocket_search_against_the_teacher_leaves_its_invalid_answers_out(fake_openai, repo):
    server = fake_openai(labels={t: said(i) for i, t in enumerate(TEXTS)})
    suite = labelling_suite(repo, server.base_url, criteria=[
        {"name": "pockets", "metric": "accuracy", "compare": "teacher_delta", "min": -0.05,
         "scope": "discovered", "teacher_invalid": "exclude"},
        {"name": "slices", "metric": "accuracy", "compare": "teacher_delta", "min": -0.5,
         "scope": "all", "teacher_invalid": "exclude", "decision": "point"}])
    _, doc = run(suite, "pockets.json")
    by = {c["id"].split("::", 1)[1]: c for c in doc["checks"]}
    invalid = {f"r{i}" for i in [*UNDECIDED, *POSITIVE]}
    pockets = by["pockets[discovered]"]
    assert pockets["excluded"] == 7 and pockets["n"] == 33
    assert not invalid & set(pockets["examples"])
    # Per slice: r7, r8, r18 in the first half; r21, r28, r30, r38 in the second.
    assert by["slices[overall]"]["excluded"] == 7 and by["slices[overall]"]["n"] == 33
    assert by["slices[half=first]"]["excluded"] == 3 and by["slices[half=first]"]["n"] == 17
    assert by["slices[half=second]"]["excluded"] == 4 and by["slices[half=second]"]["n"] == 16
