"""The generation adapter on tiny, randomly initialised GPT-2 and T5 models saved to disk.

The tokenizer is character-level (one token per character, built with ``tokenizers``), so
token counts can be read off the text. Every model is built from a fixed seed and runs in
fp32 on the CPU: its outputs are fixed, and each test derives what it expects from a plain
one-prompt-at-a-time ``model.generate``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.cache import PredictionCache, predict_cached
from harness.data import Dataset
from harness.errors import ModelError, SpecError
from harness.models.transformers import TransformersModel
from harness.models.transformers_generation import GenerationModel
from harness.spec_types import GenerationSettings, ModelSpec

torch = pytest.importorskip("torch")

SPECIALS = ["<pad>", "<eos>", "<unk>"]
CHARS = list("abcdefghijklmnopqrstuvwxyz ,.;:\n")
VOCAB = SPECIALS + CHARS
# Different lengths on purpose: a batch of them is left-padded.
PROMPTS = ("the cat sat on the mat.", "hi", "a much longer prompt, with commas; and more words",
           "phone", "ough", "x y z")
MAX_NEW = 12
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture(scope="module", autouse=True)
def offline_hub(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
        yield


def _tokenizer(pad: bool, chat: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({c: i for i, c in enumerate(VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    extra = {"pad_token": "<pad>"} if pad else {}  # a GPT-2-style tokenizer has no pad token
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", unk_token="<unk>",
                                  **extra)
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def _save_causal(folder: Path, seed: int = 0, chat: bool = False) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(VOCAB), n_positions=96, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=1, eos_token_id=1)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    _tokenizer(pad=False, chat=chat).save_pretrained(str(folder))
    return folder


def _save_seq2seq(folder: Path, seed: int = 0) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=len(VOCAB), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                      num_decoder_layers=2, num_heads=2, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    _tokenizer(pad=True).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices: on a shared CPU, torch's thread pool spins far longer than it computes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_causal(tmp_path_factory.mktemp("causal"))


@pytest.fixture(scope="module")
def chat_causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_causal(tmp_path_factory.mktemp("chat"), chat=True)


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_seq2seq(tmp_path_factory.mktemp("t5"))


def _spec(folder: Path, **settings) -> ModelSpec:
    batch_size = settings.pop("batch_size", 4)
    max_length = settings.pop("max_length", 64)
    prompt = settings.pop("prompt", "{text}")
    return ModelSpec(type="transformers", source=Path("suites/gen.yaml"), field="teacher",
                     path=str(folder), local_path=folder, batch_size=batch_size,
                     max_length=max_length, device="cpu", dtype="float32",
                     generation=GenerationSettings(**{"max_new_tokens": MAX_NEW, **settings}),
                     prompt=prompt, task="generation")


def _data(prompts=PROMPTS) -> Dataset:
    return Dataset(path=Path("eval.jsonl"), sha256="d" * 64,
                   ids=tuple(f"q-{i}" for i in range(len(prompts))), inputs=tuple(prompts),
                   labels=None)


def _one_at_a_time(folder: Path, prompts, seq2seq: bool = False) -> list[list[int]]:
    """Each prompt generated alone by a freshly loaded model: the reference answers' tokens."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = auto.from_pretrained(str(folder), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    rows = []
    for text in prompts:
        enc = tok(text, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=1
                                 if not seq2seq else 0, eos_token_id=1)
        new = out[0, 1:] if seq2seq else out[0, enc["input_ids"].shape[1]:]
        rows.append(new.tolist())
    return rows


def _text(tokens: list[int]) -> str:
    return "".join(VOCAB[t] for t in tokens if t >= len(SPECIALS))


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_batched_left_padded_greedy_equals_one_at_a_time(kind, request):
    folder = request.getfixturevalue(kind)
    model = GenerationModel(_spec(folder, batch_size=4), "teacher")
    pred = model.predict(_data(), [])
    reference = _one_at_a_time(folder, PROMPTS, seq2seq=kind == "seq2seq")
    expected = [_text(row[: row.index(1)] if 1 in row else row) for row in reference]
    assert list(pred.outputs) == expected
    assert pred.ids == _data().ids
    # A random model rarely says EOS within 12 tokens: the answers run to max_new_tokens.
    assert [int(n) for n in pred.output_tokens] == [
        row.index(1) + 1 if 1 in row else MAX_NEW for row in reference]
    assert pred.finish_reasons == tuple("stop" if 1 in r else "length" for r in reference)
    assert len(set(pred.outputs)) > 1, "the prompts must get different answers"
    if kind == "causal":
        assert model._tokenizer.padding_side == "left"
        assert model._tokenizer.pad_token_id == 1  # GPT-2 style: no pad token, EOS pads
    # Batch size changes nothing under greedy decoding.
    one = GenerationModel(_spec(folder, batch_size=1), "teacher").predict(_data(), [])
    assert one.outputs == pred.outputs
    assert model.facts().extra["architecture"] == kind


def test_outputs_come_back_in_suite_order(causal):
    forward = GenerationModel(_spec(causal, batch_size=2), "teacher").predict(_data(), [])
    backward = GenerationModel(_spec(causal, batch_size=2), "teacher").predict(
        _data(PROMPTS[::-1]), [])
    assert backward.outputs == forward.outputs[::-1]
    assert list(backward.input_tokens) == list(forward.input_tokens[::-1])


def test_progress_after_each_batch(causal):
    calls: list[tuple[int, int]] = []
    GenerationModel(_spec(causal, batch_size=4), "teacher").predict(
        _data(), [], lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]


# --------------------------------------------------------------------------- answers


def test_usage_counts_prompt_tokens_unpadded_and_truncated_from_the_left(causal):
    pred = GenerationModel(_spec(causal), "teacher").predict(_data(), [])
    assert [int(n) for n in pred.input_tokens] == [len(p) for p in PROMPTS]  # one per character
    assert pred.usage() == {"requests": 6, "cached": 0, "input_tokens": sum(map(len, PROMPTS)),
                            "output_tokens": int(pred.output_tokens.sum())}
    short = GenerationModel(_spec(causal, max_length=5), "teacher")
    cut = short.predict(_data(), [])
    assert [int(n) for n in cut.input_tokens] == [min(5, len(p)) for p in PROMPTS]
    assert short.facts().extra["truncated_prompts"] == sum(len(p) > 5 for p in PROMPTS)
    # A causal LM keeps the end of an over-long prompt: it continues from there.
    tails = GenerationModel(_spec(causal), "teacher").predict(_data([p[-5:] for p in PROMPTS]), [])
    assert cut.outputs == tails.outputs


def test_stop_strings_cut_the_answer_and_count_the_tokens_to_them(causal):
    free = GenerationModel(_spec(causal), "teacher").predict(_data(), [])
    answer = free.outputs[0]
    stop = answer[3:5]
    at = answer.find(stop)
    stopped = GenerationModel(_spec(causal, stop=(stop, "never-said")), "teacher").predict(
        _data(), [])
    assert stopped.outputs[0] == answer[:at]
    assert stopped.finish_reasons[0] == "stop"
    assert int(stopped.output_tokens[0]) == at + len(stop)  # through the stop string's end
    for i, text in enumerate(free.outputs):  # the other answers: cut where the stop occurs
        k = text.find(stop)
        assert stopped.outputs[i] == (text if k < 0 else text[:k])
        assert stopped.finish_reasons[i] == ("length" if k < 0 else "stop")
        assert int(stopped.output_tokens[i]) == (MAX_NEW if k < 0 else k + len(stop))


def test_eos_ends_an_answer_with_finish_reason_stop(causal, tmp_path):
    free = GenerationModel(_spec(causal), "teacher").predict(_data(), [])
    char = free.outputs[0][2]
    eos = VOCAB.index(char)
    folder = tmp_path / "eos"
    shutil.copytree(causal, folder)
    for name in ("config.json", "generation_config.json"):  # a model whose EOS is that token
        doc = json.loads((folder / name).read_text())
        doc["eos_token_id"] = eos
        (folder / name).write_text(json.dumps(doc))
    pred = GenerationModel(_spec(folder), "teacher").predict(_data(), [])
    for i, text in enumerate(free.outputs):
        k = text.find(char)
        if k < 0:
            assert pred.outputs[i] == text and pred.finish_reasons[i] == "length"
            assert int(pred.output_tokens[i]) == MAX_NEW
        else:
            assert pred.outputs[i] == text[:k] and pred.finish_reasons[i] == "stop"
            assert int(pred.output_tokens[i]) == k + 1  # EOS counted
    assert pred.finish_reasons[0] == "stop" and int(pred.output_tokens[0]) <= 3


def test_sampling_is_seeded_and_reproducible(causal):
    def run(seed: int) -> tuple[str, ...]:
        spec = _spec(causal, temperature=1.0, seed=seed)
        outputs = GenerationModel(spec, "teacher").predict(_data(), []).outputs
        assert outputs is not None
        return outputs

    greedy = GenerationModel(_spec(causal), "teacher").predict(_data(), []).outputs
    assert run(0) == run(0)
    assert run(0) != run(1)
    assert run(0) != greedy


def test_chat_template_with_system_message(chat_causal):
    spec = _spec(chat_causal, chat=True, system="be brief")
    model = GenerationModel(spec, "teacher")
    rendered = model.prompts(["hi"])
    assert rendered == ["system: be brief\nuser: hi\nassistant:"]
    pred = model.predict(_data(("hi",)), [])
    assert int(pred.input_tokens[0]) == len(rendered[0])
    plain = GenerationModel(_spec(chat_causal), "teacher").predict(_data(tuple(rendered)), [])
    assert pred.outputs == plain.outputs


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_changes_with_every_output_changing_setting(chat_causal):
    base = _spec(chat_causal)
    fp = GenerationModel(base, "teacher").fingerprint()
    assert GenerationModel(_spec(chat_causal), "teacher").fingerprint() == fp
    changed = {
        "max_new_tokens": _spec(chat_causal, max_new_tokens=MAX_NEW + 1),
        "stop": _spec(chat_causal, stop=("\n",)),
        "temperature": _spec(chat_causal, temperature=0.7),
        "top_p": _spec(chat_causal, temperature=0.7, top_p=0.9),
        "seed": _spec(chat_causal, seed=1),
        "chat": _spec(chat_causal, chat=True),
        "system": _spec(chat_causal, chat=True, system="be brief"),
        "prompt": _spec(chat_causal, prompt="word: {text}"),
        "max_length": _spec(chat_causal, max_length=32),
        "dtype": replace(base, dtype="bfloat16"),
    }
    prints = {name: GenerationModel(spec, "teacher").fingerprint() for name, spec in changed.items()}
    assert fp not in prints.values()
    assert len(set(prints.values())) == len(prints)
    assert TransformersModel(replace(base, task="classification"), "t").fingerprint() != fp


def test_fingerprint_follows_the_chat_template_text(chat_causal, tmp_path):
    folder = tmp_path / "other_template"
    shutil.copytree(chat_causal, folder)
    template = next(p for p in (folder / "chat_template.jinja", folder / "tokenizer_config.json")
                    if p.is_file())
    template.write_text(template.read_text().replace("assistant:", "bot:"))
    a = GenerationModel(_spec(chat_causal, chat=True), "teacher").fingerprint()
    b = GenerationModel(_spec(folder, chat=True), "teacher").fingerprint()
    assert a != b


def test_cache_round_trip_keeps_outputs_usage_and_finish_reasons(causal, tmp_path):
    cache = PredictionCache(tmp_path / "cache")
    spec = _spec(causal, stop=("e",))
    fresh, hit = predict_cached(GenerationModel(spec, "teacher"), _data(), [], cache)
    assert not hit
    again, hit = predict_cached(GenerationModel(spec, "teacher"), _data(), [], cache)
    assert hit
    assert again.outputs == fresh.outputs and again.finish_reasons == fresh.finish_reasons
    assert again.input_tokens is not None and again.output_tokens is not None
    assert np.array_equal(again.input_tokens, fresh.input_tokens)
    assert np.array_equal(again.output_tokens, fresh.output_tokens)
    assert again.input_tokens.dtype == np.int64


# --------------------------------------------------------------------------- loading


def test_device_map_auto_loads_through_accelerate(causal):
    pytest.importorskip("accelerate")
    mapped = GenerationModel(replace(_spec(causal), device_map="auto"), "teacher")
    assert mapped._load_options() == {"device_map": "auto"}  # handed to from_pretrained
    pred = mapped.predict(_data(), [])
    assert pred.outputs == GenerationModel(_spec(causal), "teacher").predict(_data(), []).outputs


def test_embed_and_close(causal, seq2seq):
    for folder in (causal, seq2seq):
        model = GenerationModel(_spec(folder), "teacher")
        vectors = model.embed(list(PROMPTS))
        assert vectors.shape == (len(PROMPTS), 32) and np.isfinite(vectors).all()
        alone = np.vstack([model.embed([p]) for p in PROMPTS])  # padding changes nothing
        np.testing.assert_allclose(vectors, alone, atol=1e-5)
        model.close()
        assert model._model is None and model._tokenizer is None


def test_empty_data_set(causal):
    pred = GenerationModel(_spec(causal), "teacher").predict(_data(()), [])
    assert pred.outputs == () and pred.finish_reasons == () and len(pred.input_tokens) == 0


def _model_error(spec: ModelSpec, call: str = "fingerprint") -> str:
    with pytest.raises(ModelError) as info:
        model = GenerationModel(spec, "teacher")
        model.fingerprint() if call == "fingerprint" else model.predict(_data(), [])
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_classification_head_is_refused(causal, tmp_path):
    folder = tmp_path / "classifier"
    shutil.copytree(causal, folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["GPT2ForSequenceClassification"]
    (folder / "config.json").write_text(json.dumps(config))
    for call in ("fingerprint", "predict"):
        message = _model_error(_spec(folder), call)
        assert message.startswith("suites/gen.yaml: teacher.path: ")
        assert f"{folder / 'config.json'}: architectures: GPT2ForSequenceClassification" in message
        assert ("is a sequence-classification model; a generation suite needs a causal LM or"
                " seq2seq model") in message


def test_missing_folder_and_missing_tokenizer(causal, tmp_path):
    message = _model_error(_spec(tmp_path / "nowhere"))
    assert "teacher.path" in message and "does not exist" in message
    folder = tmp_path / "no_tokenizer"
    shutil.copytree(causal, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    message = _model_error(_spec(folder))
    assert "teacher.path" in message and "has no tokenizer" in message


def test_chat_without_a_template_is_refused(causal):
    message = _model_error(_spec(causal, chat=True))
    assert "teacher.generation.chat" in message and "no chat template" in message


def test_max_new_tokens_zero_is_refused_by_the_suite_schema(tmp_path, monkeypatch):
    from harness.spec import load_suite

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "eval.jsonl").write_text('{"id": "a", "word": "cat", "ref": "K AE T"}\n')
    (tmp_path / "rubric.yaml").write_text(
        "schema_version: 1\nid: g\nversion: 1\ncriteria:\n"
        "  - {name: em, metric: exact_match, compare: teacher_ratio, min: 0.9}\n")
    (tmp_path / "suite.yaml").write_text(
        "schema_version: 1\nname: gen\nversion: '1'\ntask: generation\n"
        "data: {path: eval.jsonl, input: word, label: ref}\n"
        "teacher: {type: predictions, path: eval.jsonl}\n"
        "student:\n  type: transformers\n  path: org/student\n"
        "  generation: {max_new_tokens: 0}\n"
        "rubric: rubric.yaml\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        load_suite(tmp_path / "suite.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert "suite.yaml" in message and "student.generation.max_new_tokens" in message
