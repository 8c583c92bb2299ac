"""The same tiny causal LM, run locally (``type: transformers``) and behind ``transformers serve``
(``type: openai``): the same greedy answers, token for token.

Both sides decode greedily from the same weights and tokenizer with no padding (the local model
runs with ``batch_size: 1``, as the server does one request at a time), so the outputs must be
equal, not merely close.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from endpoint_helpers import write_suite

from harness.cli import main
from harness.models import load_model
from harness.spec import load_suite

pytest.importorskip("torch")
pytest.importorskip("fastapi")

PROMPTS = ["the cat", "a dog ran", "hello", "birds sing at", "rain falls on the", "small models",
           "the sun rises", "fish swim in", "distill the", "the mat"]


def _suite(root: Path, url: str, tiny_lm: Path, name: str, api: str = "completions") -> Path:
    generation: dict = {"max_new_tokens": 6, "temperature": 0, "seed": 0}
    if api == "chat":  # the server applies the chat template; locally, generation.chat does
        generation.update(chat=True, system="answer briefly")
    rows = [{"id": f"p{i}", "text": t} for i, t in enumerate(PROMPTS)]
    return write_suite(
        root, name, rows=rows,
        teacher={"type": "transformers", "path": "../models/tiny-lm", "batch_size": 1,
                 "device": "cpu", "dtype": "float32", "generation": generation},
        student={"type": "openai", "base_url": url, "model": str(tiny_lm), "api": api,
                 "max_connections": 2, "timeout_s": 60, "retries": 1, "generation": generation,
                 "metadata": {"usd_per_million_tokens": {"input": 1.0, "output": 2.0}}})


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_served_model_answers_as_the_local_model(transformers_server, tiny_lm, endpoint_repo, api):
    spec = load_suite(_suite(endpoint_repo, transformers_server, tiny_lm, f"served_{api}", api))
    local = load_model(spec.teacher, "teacher")
    served = load_model(spec.student, "student")
    from harness.data import load_dataset

    data = load_dataset(spec.data, None)
    try:
        want = local.predict(data, [])
    finally:
        local.close()
    got = served.predict(data, [])
    assert got.outputs == want.outputs
    assert any(o.strip() for o in got.outputs)  # the comparison is not between empty answers
    assert got.finish_reasons == want.finish_reasons
    assert got.input_tokens is not None and want.input_tokens is not None
    assert got.input_tokens.tolist() == want.input_tokens.tolist()
    assert got.output_tokens.tolist() == want.output_tokens.tolist()
    assert got.served == {"model": str(tiny_lm), "system_fingerprint": None}
    assert (got.latency_s > 0).all()


def test_served_model_is_gated_against_the_local_one(transformers_server, tiny_lm, endpoint_repo,
                                                     tmp_path, capsys, monkeypatch):
    """``distill run``: the served student matches its local teacher on every example."""
    suite = _suite(endpoint_repo, transformers_server, tiny_lm, "served_gate")
    monkeypatch.chdir(endpoint_repo)
    report = tmp_path / "report.json"
    args = ["run", str(suite), "--cache", str(tmp_path / "cache")]
    assert main([*args, "--report", str(report)]) == 0, capsys.readouterr().err
    doc = json.loads(report.read_text("utf-8"))
    (check,) = [c for s in doc["suites"] for c in s["checks"] if c["criterion"] == "fidelity"]
    assert check["value"] == 1.0 and check["verdict"] == "pass"
    capsys.readouterr()
    # A second run would ask the server nothing: every answer comes from the cache.
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "student (openai" in out and "0 requests (10 of 10 examples cached)" in out
    assert "0 requests in all" in out
