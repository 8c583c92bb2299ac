"""Suites and model specs of the endpoint tests, written as a user writes them."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import yaml

from harness.data import Dataset
from harness.economics.settings import parse_token_prices
from harness.spec_types import GenerationSettings, ModelSpec


def write_suite(root: Path, name: str, *, rows: list[dict[str, Any]], teacher: dict[str, Any],
                student: dict[str, Any], task: str = "generation", labels: list[str] | None = None,
                criteria: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``suites/<name>.yaml`` with its data and rubric under ``root``; return the suite path."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "suites").mkdir(exist_ok=True)
    (root / "rubrics").mkdir(exist_ok=True)
    (root / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    if criteria is None:
        criteria = ([{"name": "fidelity", "metric": "teacher_match", "compare": "value",
                      "min": 0.99, "scope": "overall", "decision": "point"}] if task == "generation"
                    else [{"name": "agree", "metric": "agreement", "compare": "value", "min": 0.5,
                           "scope": "overall", "decision": "point"}])
    (root / "rubrics" / f"{name}.yaml").write_text(yaml.safe_dump(
        {"schema_version": 1, "id": f"{name}-gate", "version": 1,
         "defaults": {"min_support": 1}, "criteria": criteria}), "utf-8")
    data: dict[str, Any] = {"path": f"../data/{name}.jsonl", "id": "id", "input": "text"}
    if any("reference" in r for r in rows):
        data["label"] = "reference"
    doc: dict[str, Any] = {"schema_version": 1, "name": name, "version": "1", "task": task,
                           "data": data, "teacher": teacher, "student": student,
                           "rubric": f"../rubrics/{name}.yaml",
                           "baseline": f"../baselines/{name}.json"}
    if labels is not None:
        doc["labels"] = labels
    doc.update(extra or {})
    path = root / "suites" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return path


def endpoint_spec(base_url: str, *, task: str = "generation", max_new_tokens: int = 16,
                  stop: tuple[str, ...] = (), **raw: Any) -> ModelSpec:
    """A ``type: openai`` model spec as ``spec.py`` builds it from a suite."""
    keys = {"type": "openai", "model": "fake-teacher", "base_url": base_url, "api": "chat",
            "max_connections": 8, "timeout_s": 5, "retries": 3, **raw}
    if "base_url_env" in raw:
        del keys["base_url"]
    metadata = dict(keys.pop("metadata", {}) or {})
    return ModelSpec(type="openai", source=Path("suites/endpoint.yaml"), field="teacher",
                     task=task, generation=GenerationSettings(max_new_tokens=max_new_tokens,
                                                              stop=stop),
                     metadata=metadata, raw=keys,
                     prices=parse_token_prices(metadata.get("usd_per_million_tokens")))


def dataset(prompts: list[str], *, sha: str = "d" * 64) -> Dataset:
    """A data set of ``prompts`` with ids ``q0``, ``q1``, … (the prompts are the inputs)."""
    return Dataset(path=Path("data/endpoint.jsonl"), sha256=sha,
                   ids=tuple(f"q{i}" for i in range(len(prompts))), inputs=tuple(prompts),
                   labels=None)


def files_containing(folder: Path, needle: str) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``needle``."""
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
