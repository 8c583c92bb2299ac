"""The transformers adapter on tiny, randomly initialised BERT classifiers saved to disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.data import Dataset
from harness.errors import ModelError
from harness.models.transformers import TransformersModel, match_labels
from harness.spec_types import ModelSpec

torch = pytest.importorskip("torch")

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a movie film plot was is not very good bad great"
    " awful fun boring and but of it"
).split()
TEXTS = (
    "the movie was good",
    "bad",
    "the plot was not very good but the film was fun and it was great",
    "awful",
    "it is a boring film",
    "great great great fun",
    "the the the the the the the the the the the the the the the the the the the the the"
    " the the the the the the the the the the the the the the the the the the the the the"
    " the the the the the the the the the the the the the the the the the the the the the"
    " the the the the the the the the",  # longer than the model's 64 positions
    "not bad",
    "a film",
)
LABELS = ("fresh", "rotten")


@pytest.fixture(scope="module", autouse=True)
def offline_hub(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
        yield


def _save_tiny_bert(folder: Path, id2label: dict[int, str], seed: int = 0) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _set_id2label(src: Path, dst: Path, names: list[str]) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.fixture(scope="module")
def models(offline_hub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders: "named" (rotten, fresh), "generic" (LABEL_0/1), "other" (neg, pos), "bin"."""
    root = tmp_path_factory.mktemp("models")
    named = root / "named"
    _save_tiny_bert(named, {0: "rotten", 1: "fresh"})
    generic = _set_id2label(named, root / "generic", ["LABEL_0", "LABEL_1"])
    other = _set_id2label(named, root / "other", ["neg", "pos"])
    pickled = root / "bin"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(named / name, pickled / name)
    from safetensors.torch import load_file

    torch.save(load_file(str(named / "model.safetensors")), str(pickled / "pytorch_model.bin"))
    return {"named": named, "generic": generic, "other": other, "bin": pickled}


def _spec(folder: Path | None, **kw) -> ModelSpec:
    fields = dict(
        type="transformers",
        source=Path("suites/tiny.yaml"),
        field="teacher",
        path=str(folder) if folder is not None else None,
        local_path=folder,
        batch_size=4,
        max_length=128,
        device="cpu",
    )
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def _data(texts=TEXTS) -> Dataset:
    return Dataset(
        path=Path("eval.jsonl"),
        sha256="0" * 64,
        ids=tuple(f"ex-{i}" for i in range(len(texts))),
        inputs=tuple(texts),
        labels=None,
    )


def _model(folder: Path | None, **kw) -> TransformersModel:
    return TransformersModel(_spec(folder, **kw), "teacher")


# -- predictions ---------------------------------------------------------------------------


def test_predictions_are_probabilities_in_suite_label_order(models):
    model = _model(models["named"])
    seen: list[tuple[int, int]] = []
    preds = model.predict(_data(), LABELS, progress=lambda done, total: seen.append((done, total)))
    assert preds.ids == _data().ids
    assert preds.scores is not None and preds.scores.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(preds.scores.sum(axis=1), 1.0, atol=1e-9)
    assert preds.labels == tuple(LABELS[j] for j in preds.scores.argmax(axis=1))
    assert seen[-1] == (len(TEXTS), len(TEXTS))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) == -(-len(TEXTS) // 4)
    assert model.facts().extra["label_mapping"] == "names"

    # The suite's order decides the columns, whatever the model's output order and case.
    swapped = _model(models["named"]).predict(_data(), ["ROTTEN", "Fresh"])
    np.testing.assert_allclose(swapped.scores, preds.scores[:, ::-1], atol=1e-6)


def test_length_sorted_batches_keep_example_order(models):
    one = _model(models["named"], batch_size=1).predict(_data(), LABELS)
    four = _model(models["named"], batch_size=4).predict(_data(), LABELS)
    assert one.ids == four.ids
    np.testing.assert_allclose(one.scores, four.scores, atol=1e-5)
    assert one.labels == four.labels
    # A single example predicted alone is the same row as in the batch.
    alone = _model(models["named"]).predict(_data(TEXTS[2:3]), LABELS)
    np.testing.assert_allclose(alone.scores[0], four.scores[2], atol=1e-5)


def test_empty_dataset(models):
    preds = _model(models["named"]).predict(_data(()), LABELS)
    assert preds.ids == () and preds.labels == ()
    assert preds.scores is not None and preds.scores.shape == (0, 2)


def test_embed_is_mean_pooled_float32_in_input_order(models):
    model = _model(models["named"], batch_size=3)
    rows = model.embed(list(TEXTS))
    assert rows.dtype == np.float32 and rows.shape == (len(TEXTS), 32)
    alone = _model(models["named"], batch_size=1).embed([TEXTS[4]])
    np.testing.assert_allclose(rows[4], alone[0], atol=1e-5)


def test_close_frees_and_reloads(models):
    model = _model(models["named"])
    first = model.predict(_data(), LABELS)
    model.close()
    assert model._model is None
    again = model.predict(_data(), LABELS)
    np.testing.assert_allclose(first.scores, again.scores)


# -- labels --------------------------------------------------------------------------------


def test_unmatched_labels_name_both_sets(models):
    with pytest.raises(ModelError) as err:
        _model(models["other"]).predict(_data(), LABELS)
    assert "['neg', 'pos']" in str(err.value) and "['fresh', 'rotten']" in str(err.value)


def test_generic_labels_map_by_position_when_counts_match(models):
    model = _model(models["generic"])
    preds = model.predict(_data(), ["neg", "pos"])
    assert model.facts().extra["label_mapping"] == "positional"
    named = _model(models["named"]).predict(_data(), ["rotten", "fresh"])
    np.testing.assert_allclose(preds.scores, named.scores, atol=1e-6)
    with pytest.raises(ModelError, match="generic"):
        _model(models["generic"]).predict(_data(), ["neg", "neutral", "pos"])


@pytest.mark.parametrize(
    ("model_labels", "suite_labels", "expected"),
    [
        (["a", "b"], ["B", "a"], ([1, 0], "names")),
        (["LABEL_0", "LABEL_1"], ["LABEL_1", "LABEL_0"], ([1, 0], "names")),
        (["LABEL_0", "LABEL_1"], ["x", "y"], ([0, 1], "positional")),
    ],
)
def test_match_labels(model_labels, suite_labels, expected):
    assert match_labels(model_labels, suite_labels) == expected


@pytest.mark.parametrize(
    ("model_labels", "suite_labels"),
    [(["a", "b", "c"], ["a", "b"]), (["a", "b"], ["a", "c"]), (["a", "A"], ["a", "b"])],
)
def test_match_labels_refuses(model_labels, suite_labels):
    with pytest.raises(ModelError, match="cannot match"):
        match_labels(model_labels, suite_labels)


# -- safe loading --------------------------------------------------------------------------


def test_pickle_weights_are_refused_unless_allowed(models):
    with pytest.raises(ModelError, match="safetensors") as err:
        _model(models["bin"]).predict(_data(), LABELS)
    assert "allow_pickle: true" in str(err.value)
    with pytest.raises(ModelError, match="allow_pickle"):
        _model(models["bin"]).fingerprint()

    allowed = _model(models["bin"], allow_pickle=True)
    preds = allowed.predict(_data(), LABELS)
    named = _model(models["named"]).predict(_data(), LABELS)
    np.testing.assert_allclose(preds.scores, named.scores, atol=1e-6)
    assert allowed.facts().params == _model(models["named"]).facts().params


def test_remote_code_needs_the_command_line_switch(models):
    with pytest.raises(ModelError, match="--distill-allow-remote-code"):
        _model(models["named"], trust_remote_code=True)
    model = TransformersModel(
        _spec(models["named"], trust_remote_code=True), "teacher", allow_remote_code=True
    )
    assert model.trust_remote_code


def test_missing_folder_fails_fast(tmp_path):
    model = _model(tmp_path / "nowhere")
    start = time.monotonic()
    with pytest.raises(ModelError, match="does not exist"):
        model.fingerprint()
    with pytest.raises(ModelError, match="does not exist"):
        model.predict(_data(), LABELS)
    assert time.monotonic() - start < 1.0


def test_hub_id_offline_fails_fast_with_advice():
    model = _model(None, path="distill-harness-tests/not-a-model", revision="v1")
    start = time.monotonic()
    with pytest.raises(ModelError) as err:
        model.fingerprint()
    assert time.monotonic() - start < 5.0
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1" in message
    assert "distill-harness-tests/not-a-model@v1" in message
    assert "point path at it" in message


# -- devices and dtypes --------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_an_error_and_the_override_wins(models):
    with pytest.raises(ModelError, match="CUDA is not available"):
        _model(models["named"], device="cuda:0").predict(_data(), LABELS)
    model = TransformersModel(_spec(models["named"], device="cuda"), "teacher", device_override="cpu")
    model.predict(_data(TEXTS[:2]), LABELS)
    assert model.facts().extra["device"] == "cpu"
    with pytest.raises(ModelError, match="unknown device"):
        _model(models["named"], device="tpu").predict(_data(), LABELS)


def test_dtype_is_checked_and_used(models):
    with pytest.raises(ModelError, match="unknown dtype"):
        _model(models["named"], dtype="float8")
    model = _model(models["named"], dtype="bfloat16")
    preds = model.predict(_data(), LABELS)
    assert model._model.dtype == torch.bfloat16
    np.testing.assert_allclose(preds.scores.sum(axis=1), 1.0, atol=1e-9)


# -- fingerprints and facts ----------------------------------------------------------------


def test_fingerprint_is_stable_and_tracks_what_decides_outputs(models, tmp_path):
    base = _model(models["named"]).fingerprint()
    assert len(base) == 64
    assert _model(models["named"]).fingerprint() == base
    assert _model(models["named"], batch_size=1, device="auto").fingerprint() == base
    assert _model(models["named"], max_length=64).fingerprint() != base
    assert _model(models["named"], dtype="float16").fingerprint() != base
    assert _model(models["generic"]).fingerprint() != base  # config.json differs

    changed = tmp_path / "changed"
    shutil.copytree(models["named"], changed)
    before = _model(changed).fingerprint()
    assert before == base  # the folder's path is not part of it
    from safetensors.torch import load_file, save_file

    weights = load_file(str(changed / "model.safetensors"))
    weights["classifier.bias"] = weights["classifier.bias"] + 1.0
    save_file(weights, str(changed / "model.safetensors"), metadata={"format": "pt"})
    assert _model(changed).fingerprint() != before

    (changed / "tokenizer_config.json").write_text("{}")
    assert _model(changed).fingerprint() != before


def test_weights_outside_the_repository_by_path_env_keep_their_fingerprint(
        models, tiny_copy, tmp_path, monkeypatch):
    from harness.spec import load_suite

    suite = tiny_copy / "suites" / "tiny.yaml"
    suite.write_text(suite.read_text("utf-8").replace(
        "teacher:\n  type: predictions\n  path: ../data/teacher.jsonl",
        "teacher:\n  type: transformers\n  path_env: TEACHER_DIR"), "utf-8")
    fingerprints = []
    for where in ("cache", "volume"):
        folder = tmp_path / where / "teacher"
        shutil.copytree(models["named"], folder)
        monkeypatch.setenv("TEACHER_DIR", str(folder))
        spec = load_suite(suite).teacher
        assert spec.local_path == folder.resolve() and spec.path is None
        fingerprints.append(TransformersModel(spec, "teacher").fingerprint())
    assert fingerprints == [_model(models["named"]).fingerprint()] * 2


def test_fingerprint_hashes_each_file_once(models, monkeypatch):
    import harness.paths as paths

    _model(models["named"]).fingerprint()
    opened: list[Path] = []
    real_open = Path.open

    def spy(self, *args, **kwargs):
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    _model(models["named"]).fingerprint()
    assert not [p for p in opened if p.suffix == ".safetensors"]
    assert paths._FILE_HASHES


def test_facts_count_parameters_from_headers(models):
    from transformers import AutoModelForSequenceClassification

    facts = _model(models["named"]).facts()
    loaded = AutoModelForSequenceClassification.from_pretrained(str(models["named"]))
    assert facts.params == sum(p.numel() for p in loaded.parameters())
    expected_bytes = sum(
        (models["named"] / n).stat().st_size
        for n in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    )
    assert facts.bytes == expected_bytes


def test_fingerprint_and_facts_do_not_import_torch(models):
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import harness.models.transformers as adapter
        from harness.spec_types import ModelSpec
        assert "torch" not in sys.modules and "transformers" not in sys.modules
        folder = Path({str(models["named"])!r})
        spec = ModelSpec(type="transformers", source=Path("s.yaml"), field="teacher",
                         path=str(folder), local_path=folder)
        model = adapter.TransformersModel(spec, "teacher")
        assert len(model.fingerprint()) == 64
        assert model.facts().params > 0
        heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_fingerprint_of_a_hub_model_pins_id_and_revision(models, tmp_path):
    model_a = _model(None, path="org/tiny", revision="abc")
    model_b = _model(None, path="org/tiny", revision="def")
    # Resolve both to the same local snapshot to compare what the hub id adds.
    model_a._folder = model_b._folder = models["named"]
    local = _model(models["named"]).fingerprint()
    assert len({model_a.fingerprint(), model_b.fingerprint(), local}) == 3


def test_spec_without_a_path_is_an_error():
    with pytest.raises(ModelError, match="needs a path"):
        _model(None, path=None).fingerprint()


def test_spec_replace_keeps_the_adapter_cheap(models):
    # Constructing reads nothing: even a folder that does not exist yet is fine until used.
    TransformersModel(replace(_spec(models["named"]), local_path=Path("/nope")), "student")


@pytest.mark.parametrize(
    ("spec_dtype", "device", "stored", "expected"),
    [
        ("auto", "cpu", "bfloat16", "float32"),
        ("auto", "cuda", "bfloat16", "bfloat16"),
        ("auto", "cuda", torch.float16, "float16"),  # transformers 5 configs hold torch dtypes
        ("auto", "cuda", "float32", "float32"),
        ("auto", "mps", None, "float32"),
        ("float16", "cpu", "float32", "float16"),
    ],
)
def test_auto_dtype_is_full_precision_on_cpu_and_the_checkpoints_on_accelerators(
    models, spec_dtype, device, stored, expected
):
    model = _model(models["named"], dtype=spec_dtype)
    resolved = model._resolve_dtype(torch, torch.device(device), stored)
    assert resolved == getattr(torch, expected)
