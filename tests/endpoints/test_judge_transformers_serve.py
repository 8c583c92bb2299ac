"""A judge behind a real ``transformers serve`` (the transport end to end).

The tiny causal LM of these tests cannot judge: its answers match no verdict, so every judgment
is invalid and the judge's check errors with one clear message — never a crash, never a silent
pass. (No capable judge model runs on this CPU machine offline.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("fastapi")

# Short: the tiny model's context is 64 positions (a longer prompt is a 400 from the server).
PROMPT = "{prompt}: {answer_a} or {answer_b}?"


def test_a_tiny_model_as_judge_gives_only_invalid_judgments_and_one_clear_error(
        endpoint_repo: Path, transformers_server: str, tiny_lm: Path, monkeypatch, capsys):
    from harness.cli import main

    root = endpoint_repo
    rows = [{"id": f"j{i}", "text": t} for i, t in enumerate(["the cat", "a dog", "rain falls"])]
    (root / "judged").mkdir(exist_ok=True)
    for name, answers in (("teacher", ["sat", "ran", "down"]), ("student", ["sits", "ran", "up"])):
        (root / "judged" / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": r["id"], "output": a}) + "\n" for r, a in zip(rows, answers, strict=True)),
            "utf-8")
    (root / "judged" / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    (root / "judged" / "judge.md").write_text(PROMPT, "utf-8")
    (root / "judged" / "rubric.yaml").write_text(yaml.safe_dump(
        {"schema_version": 1, "id": "judged-gate", "version": 1,
         "defaults": {"min_support": 1},
         "criteria": [{"name": "judged", "metric": "judge:tiny", "compare": "value",
                       "min": 0.45, "scope": "overall"}]}), "utf-8")
    suite = {"schema_version": 1, "name": "judged", "version": "1", "task": "generation",
             "data": {"path": "data.jsonl", "input": "text"},
             "teacher": {"type": "predictions", "path": "teacher.jsonl"},
             "student": {"type": "predictions", "path": "student.jsonl"},
             "rubric": "rubric.yaml", "baseline": "baseline.json",
             "judges": {"tiny": {"model": {"type": "openai", "base_url": transformers_server,
                                           "model": str(tiny_lm), "api": "chat",
                                           "max_connections": 2, "timeout_s": 60, "retries": 1,
                                           "generation": {"max_new_tokens": 6, "temperature": 0}},
                                 "prompt": "judge.md"}}}
    (root / "judged" / "suite.yaml").write_text(yaml.safe_dump(suite), "utf-8")
    monkeypatch.chdir(root)
    code = main(["run", "judged/suite.yaml", "--quiet", "--report", "judged/r.json",
                 "--cache", "judged/.cache"])
    err = capsys.readouterr().err
    assert (root / "judged" / "r.json").exists(), (code, err)
    doc = json.loads((root / "judged" / "r.json").read_text("utf-8"))
    assert doc["suites"], (doc.get("errors"), err)
    (check,) = doc["suites"][0]["checks"]
    judge = doc["suites"][0]["judges"]["tiny"]
    assert code == 1
    assert judge["requests"] == 6 and judge["invalid_rate"] == 1.0 and judge["n"] == 0
    assert check["verdict"] == "error"
    assert "every judgment was invalid" in check["message"]
    assert any("matched no verdict" in n for n in doc["suites"][0]["notes"])
