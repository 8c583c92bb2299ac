"""Examples per second of the generation adapter, against the ways one would write it by hand.

On the g2p demo's teacher and eval set (``suites/g2p/suite.yaml``: its prompt template, batch
size, max_length and generation settings), in this process, with the same torch threads and
the same loaded weights, greedy decoding throughout, texts in and answer strings out:

- **harness** — :meth:`harness.models.transformers_generation.GenerationModel.predict`:
  tokenizing, length-sorted left-padded batches, ``generate``, cutting at EOS, decoding,
  usage and finish reasons.
- **best plain loop** — the fastest batched ``model.generate`` loop this file's author could
  write: one tokenizer pass, prompts sorted by length (longest first), each batch left-padded
  to its longest, ``torch.inference_mode``, one ``batch_decode`` per batch.
- **pipeline** — ``transformers.pipeline("text-generation", model, tokenizer,
  batch_size=B)`` with ``return_full_text=False`` (the tokenizer left-padded, as a
  decoder-only model needs): batches in suite order.
- **one at a time** — ``model.generate`` on each prompt alone (on the first ``--single``
  prompts only: it is slow; its examples/s is over those).

Targets (issue 12): harness >= 1.5x the pipeline and >= 0.95x the best plain loop. Model
loading is not timed (every variant runs on the one loaded model); one untimed warm-up batch
goes first; each variant runs ``--repeats`` times in alternating order, the figure is the
median, and each ratio is the median of the ratios within a round (the load on a shared
machine swings between rounds, less within one). The answers of every variant are checked
against the harness's: greedy decoding must give the same strings.

Without the g2p build (``examples/g2p/build/teacher``), or with ``--quick``, the teacher is a
stand-in: a tiny random GPT-2 (2 layers, n_embd 32) with a character tokenizer, built in a
temporary folder, on synthetic word prompts. The output says which one ran.

Measured (2026-12-01, the 1.8M-parameter g2p teacher, all 3,000 eval words, batch 250,
max_new_tokens 32, ``--threads 1 --repeats 3`` on a shared 2-core machine): harness 193.8
examples/s, best plain loop 184.8, pipeline 105.5, one at a time 15.7 (first 200 words); harness
1.85x the pipeline (rounds 1.85, 1.84, 1.94) and 1.03x the best plain loop (1.09, 1.03, 1.00);
every variant's 3,000 answers equal the harness's. Sorting is the win over the pipeline: the
longest answer of a batch sets its number of steps, and answers grow with their words.
Two threads on that loaded machine ran many times slower (a spinning thread pool), so the
figures above are one thread for every variant.

    python benchmarks/generation_throughput.py [--suite suites/g2p/suite.yaml] [--limit N]
        [--model FOLDER] [--batch-size B] [--repeats 3] [--single 200] [--threads N]
        [--no-pipeline] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for _key in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402

from harness.data import Dataset  # noqa: E402
from harness.models.transformers_generation import GenerationModel  # noqa: E402
from harness.spec_types import GenerationSettings, ModelSpec  # noqa: E402

PIPELINE_TARGET = 1.5
PLAIN_TARGET = 0.95
SUITE = ROOT / "suites" / "g2p" / "suite.yaml"


# --------------------------------------------------------------------------- inputs


def g2p_inputs(suite: Path, limit: int | None, model: Path | None = None
               ) -> tuple[ModelSpec, Dataset] | str:
    """The suite's teacher spec (or ``model`` under its settings) and eval data; or why not."""
    from harness.data import load_dataset
    from harness.errors import HarnessError
    from harness.spec import load_suite

    if not suite.is_file():
        return f"{suite} not found"
    # The students need not be built: a copy of the suite next to it (so its relative paths
    # hold) names the teacher as the student too, and goes away at once.
    doc = yaml.safe_load(suite.read_text("utf-8"))
    doc.pop("students", None)
    doc["student"] = doc.get("teacher")
    copy = suite.with_name(f".genbench-{os.getpid()}-{suite.name}")
    copy.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    try:
        spec = load_suite(copy)
        teacher = spec.teacher
        if model is not None:
            teacher = replace(teacher, path=str(model), local_path=model.resolve())
        folder = teacher.local_path
        if folder is None or not (folder / "config.json").is_file() or not any(
                folder.glob("*.safetensors")):
            return f"the teacher {folder} is not built (python examples/g2p/prepare.py)"
        data = load_dataset(spec.data, references=True)
    except HarnessError as exc:
        return f"{exc} (python examples/g2p/prepare.py builds the demo)"
    finally:
        copy.unlink(missing_ok=True)
    if limit is not None and limit < len(data):
        step = len(data) / limit  # evenly spread, so every word length stays in
        data = data.subset([int(i * step) for i in range(limit)])
    return teacher, data


def standin_inputs(workdir: Path, n: int) -> tuple[ModelSpec, Dataset]:
    """A tiny random GPT-2 with a character tokenizer, and ``n`` word prompts."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = ["<pad>", "<s>", "</s>", "<unk>", *"abcdefghijklmnopqrstuvwxyz =", "AA", "AE", "AH",
             "B", "D", "EH", "IY", "K", "L", "N", "OW", "R", "S", "T"]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the output
    folder = workdir / "standin"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=96, n_embd=32, n_layer=2,
                               n_head=2, bos_token_id=1, eos_token_id=2, pad_token_id=0)
                    ).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 14)))
             for _ in range(n)]
    data = Dataset(path=workdir / "words.jsonl", sha256="0" * 64,
                   ids=tuple(f"w{i}" for i in range(n)), inputs=tuple(f"{w} =" for w in words),
                   labels=None)
    spec = ModelSpec(type="transformers", source=workdir / "suite.yaml", field="teacher",
                     path=str(folder), local_path=folder, batch_size=64, max_length=64,
                     device="cpu", dtype="float32", prompt="{word} =", task="generation",
                     generation=GenerationSettings(max_new_tokens=16))
    return spec, data


# --------------------------------------------------------------------------- variants


def plain_batched(model: Any, tok: Any, texts: list[str], batch_size: int,
                  kwargs: dict[str, Any]) -> list[str]:
    """The best hand-written loop: sorted, left-padded batches, one batch_decode each."""
    import torch

    enc = tok(texts, truncation=True, max_length=kwargs.pop("max_length"))
    ids, masks = enc["input_ids"], enc["attention_mask"]
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
    out: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        pos = order[start : start + batch_size]
        batch = tok.pad({"input_ids": [ids[i] for i in pos],
                         "attention_mask": [masks[i] for i in pos]}, return_tensors="pt")
        with torch.inference_mode():
            gen = model.generate(**batch, **kwargs)
        answers = tok.batch_decode(gen[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, a in zip(pos, answers, strict=True):
            out[i] = a
    return out


def one_at_a_time(model: Any, tok: Any, texts: list[str], kwargs: dict[str, Any]) -> list[str]:
    import torch

    limit = kwargs.pop("max_length")
    out = []
    for text in texts:
        enc = tok(text, truncation=True, max_length=limit, return_tensors="pt")
        with torch.inference_mode():
            gen = model.generate(**enc, **kwargs)
        out.append(tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def run_pipeline(pipe: Any, texts: list[str], batch_size: int, kwargs: dict[str, Any]) -> list[str]:
    kw = {k: v for k, v in kwargs.items() if k != "max_length"}
    results = pipe(texts, batch_size=batch_size, return_full_text=False, **kw)
    return [r[0]["generated_text"] for r in results]


def timed(fn: Callable[[], list[str]]) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--model", type=Path, default=None,
                    help="a model folder to run under the suite's teacher settings (a student)")
    ap.add_argument("--limit", type=int, default=None, help="eval rows (evenly spread)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the suite's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--single", type=int, default=200, help="prompts for the one-at-a-time loop")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-pipeline", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="the stand-in, 96 prompts, one round: seconds; targets printed, not judged")
    args = ap.parse_args(argv)
    if args.quick:
        # One thread: on tiny matrices a shared machine's spinning thread pool is all one times.
        args.repeats, args.single = 1, min(args.single, 16)
        args.threads = args.threads or 1

    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="distill-genbench-") as tmp:
        found = "--quick" if args.quick else g2p_inputs(args.suite, args.limit, args.model)
        if isinstance(found, str):
            spec, data = standin_inputs(Path(tmp), args.limit or (96 if args.quick else 2000))
            what = ("STAND-IN: a tiny random GPT-2 with a character tokenizer on synthetic"
                    f" prompts ({found}); its figures are not the g2p teacher's")
        else:
            spec, data = found
            what = f"g2p teacher {spec.path} on {args.suite}"
        if args.batch_size:
            spec = replace(spec, batch_size=args.batch_size)
        batch_size = int(spec.batch_size)
        adapter = GenerationModel(spec, "teacher")
        adapter._load()
        model, tok = adapter._model, adapter._tokenizer
        texts = data.texts()
        kwargs = adapter._generate_kwargs() | {"max_length": adapter._prompt_limit()}
        settings = spec.generation or GenerationSettings()
        print(f"model: {what}")
        print(f"  {sum(p.numel() for p in model.parameters()):,} parameters; {len(texts)} prompts;"
              f" batch size {batch_size}; max_new_tokens {settings.max_new_tokens}; greedy;"
              f" torch threads {torch.get_num_threads()}; transformers {transformers.__version__}")

        pipe = None
        if not args.no_pipeline:
            pipe = transformers.pipeline("text-generation", model=model, tokenizer=tok,
                                         device=adapter._device)
        # Warm-up (untimed), every variant on the longest batch: the first calls pay for lazy
        # imports and for growing the allocator to the largest shapes.
        longest = sorted(range(len(texts)), key=lambda i: -len(texts[i]))[:batch_size]
        warm = data.subset(longest)
        adapter.predict(warm, [])
        plain_batched(model, tok, warm.texts(), batch_size, dict(kwargs))
        if pipe is not None:
            run_pipeline(pipe, warm.texts(), batch_size, dict(kwargs))

        variants: dict[str, Callable[[], list[str]]] = {
            "harness": lambda: list(adapter.predict(data, []).outputs or ()),
            "best plain loop": lambda: plain_batched(model, tok, texts, batch_size, dict(kwargs)),
        }
        if pipe is not None:
            variants["pipeline"] = lambda: run_pipeline(pipe, texts, batch_size, dict(kwargs))
        single_texts = texts[: args.single]
        times: dict[str, list[float]] = {name: [] for name in variants}
        ratios: dict[str, list[float]] = {"pipeline": [], "best plain loop": []}
        answers: dict[str, list[str]] = {}
        for r in range(args.repeats):
            names = list(variants) if r % 2 == 0 else list(variants)[::-1]
            got: dict[str, float] = {}
            for name in names:
                seconds, out = timed(variants[name])
                times[name].append(seconds)
                got[name] = seconds
                answers[name] = out
            for other in ratios:
                if other in got:
                    ratios[other].append(got[other] / got["harness"])
        single_s, single_out = timed(lambda: one_at_a_time(model, tok, single_texts, dict(kwargs)))

        print(f"\n{'variant':<18}{'examples/s':>12}{'median s':>10}  answers equal to the harness's")
        for name in variants:
            med = statistics.median(times[name])
            same = sum(a == b for a, b in zip(answers[name], answers["harness"], strict=True))
            print(f"{name:<18}{len(texts) / med:>12.1f}{med:>10.2f}  {same}/{len(texts)}")
        same = sum(a == b for a, b in zip(single_out, answers["harness"], strict=False))
        print(f"{'one at a time':<18}{len(single_texts) / single_s:>12.1f}{single_s:>10.2f}"
              f"  {same}/{len(single_texts)} (first {len(single_texts)} prompts only)")

        print()
        met_all = True
        for other, target in (("pipeline", PIPELINE_TARGET), ("best plain loop", PLAIN_TARGET)):
            if not ratios[other]:
                print(f"target: harness >= {target}x the {other}: not measured (--no-pipeline)")
                continue
            ratio = statistics.median(ratios[other])
            met = ratio >= target
            met_all &= met
            verdict = "met" if met else "NOT met"
            if args.quick:
                verdict += " (quick run: printed, not judged)"
            print(f"target: harness >= {target}x the {other}: {ratio:.2f}x — {verdict}"
                  f" (per round: {', '.join(f'{x:.2f}' for x in ratios[other])})")
        single_rate = len(single_texts) / single_s
        harness_rate = len(texts) / statistics.median(times["harness"])
        print(f"harness vs one at a time: {harness_rate / single_rate:.1f}x")
        adapter.close()
    return 0 if (met_all or args.quick) else 1


if __name__ == "__main__":
    raise SystemExit(main())
