"""Sanity-check the demo's models without the harness: accuracy and teacher agreement per slice.

    python examples/sentiment/check_models.py [--out examples/sentiment/build] [--json FILE]

Loads the teacher and every student under ``--out`` with AutoModelForSequenceClassification,
predicts eval.jsonl, and prints, per model and slice: n, accuracy, the delta to the teacher,
agreement with the teacher and the negative flip rate (teacher right, student wrong). Then
the worst one- and two-predicate pockets per student (support >= 40), as a preview of what
the harness's discovery should find. With a traffic.jsonl (prepare.py's traffic stage), each
student's agreement with the teacher on it, overall and per slice (traffic has no labels).
Plain point estimates: the harness does the statistics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import CORES, DEFAULT_OUT, LABELS, read_jsonl  # noqa: E402


def predict(folder: Path, rows: list[dict[str, Any]]) -> tuple[list[str], float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    assert labels == list(LABELS), labels
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["text"]))
    preds: list[str] = [""] * len(rows)
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            enc = tokenizer([rows[i]["text"] for i in batch], truncation=True, max_length=64,
                            padding=True, return_tensors="pt")
            for i, j in zip(batch, model(**enc).logits.argmax(-1).tolist(), strict=True):
                preds[i] = labels[j]
    return preds, time.perf_counter() - started


def slices(rows: list[dict[str, Any]], heldout: list[str]) -> dict[str, Callable[[dict], bool]]:
    return {
        "overall": lambda r: True,
        "source=review": lambda r: r["source"] == "review",
        "source=plot": lambda r: r["source"] == "plot",
        "short (n_words<10)": lambda r: r["n_words"] < 10,
        "length=medium": lambda r: r["length"] == "medium",
        "length=long": lambda r: r["length"] == "long",
        "has_negation": lambda r: r["has_negation"],
        "has_contrast": lambda r: r["has_contrast"],
        "negation & contrast": lambda r: r["has_negation"] and r["has_contrast"],
        "first_person": lambda r: r["first_person"],
        "unseen_movies": lambda r: r["movie_name"] in heldout,
        "short reviews": lambda r: r["source"] == "review" and r["n_words"] < 10,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        os.environ.setdefault(var, "1")
    import torch
    import transformers

    torch.set_num_threads(CORES)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    rows = read_jsonl(args.out / "eval.jsonl")
    heldout = json.loads((args.out / "data.json").read_text())["heldout_movies"]
    gold = [r["label"] for r in rows]
    models = {"teacher": args.out / "teacher"}
    models.update({p.name: p for p in sorted((args.out / "students").iterdir()) if p.is_dir()})
    preds: dict[str, list[str]] = {}
    for name, folder in models.items():
        preds[name], secs = predict(folder, rows)
        print(f"{name}: predicted {len(rows)} rows in {secs:.1f}s")
    teacher = preds["teacher"]
    result: dict[str, Any] = {}
    print(f"\n{'slice':<22}{'n':>6}  " + "  ".join(f"{m:>24}" for m in models))
    print(f"{'':<22}{'':>6}  " + "  ".join(f"{'acc  d_acc  agree  nflip':>24}" for _ in models))
    for sname, pred in slices(rows, heldout).items():
        idx = [i for i, r in enumerate(rows) if pred(r)]
        cells = []
        for m in models:
            acc = sum(preds[m][i] == gold[i] for i in idx) / len(idx)
            t_acc = sum(teacher[i] == gold[i] for i in idx) / len(idx)
            agree = sum(preds[m][i] == teacher[i] for i in idx) / len(idx)
            nflip = sum(teacher[i] == gold[i] != preds[m][i] for i in idx) / len(idx)
            result.setdefault(m, {})[sname] = {"n": len(idx), "accuracy": round(acc, 4),
                                               "delta": round(acc - t_acc, 4),
                                               "agreement": round(agree, 4),
                                               "negative_flip_rate": round(nflip, 4)}
            cells.append(f"{acc:.3f} {acc - t_acc:+.3f} {agree:.3f} {nflip:.3f}")
        print(f"{sname:<22}{len(idx):>6}  " + "  ".join(f"{c:>24}" for c in cells))

    # Worst pockets: conjunctions of up to two boolean/categorical predicates.
    preds_atoms = [("source", v) for v in ("plot", "review")] + \
        [("length", v) for v in ("short", "medium", "long")] + \
        [(f, v) for f in ("has_negation", "has_contrast", "has_exclamation", "has_question",
                          "first_person") for v in (True, False)]
    for m in models:
        if m == "teacher":
            continue
        found = []
        for k in (1, 2):
            for combo in itertools.combinations(preds_atoms, k):
                if len({f for f, _ in combo}) < k:
                    continue
                idx = [i for i, r in enumerate(rows) if all(r[f] == v for f, v in combo)]
                if len(idx) < 40:
                    continue
                d = (sum(preds[m][i] == gold[i] for i in idx)
                     - sum(teacher[i] == gold[i] for i in idx)) / len(idx)
                found.append((d, len(idx), " & ".join(f"{f}={json.dumps(v)}" for f, v in combo)))
        found.sort()
        print(f"\nworst pockets for {m}: " +
              "; ".join(f"{name} (n={n}, {d:+.3f})" for d, n, name in found[:6]))
        result[m]["_pockets"] = [{"slice": s, "n": n, "delta": round(d, 4)} for d, n, s in found[:6]]
    traffic_path = args.out / "traffic.jsonl"
    if traffic_path.is_file():
        traffic = read_jsonl(traffic_path)
        t_preds = {name: predict(folder, traffic)[0] for name, folder in models.items()}
        seen = {r["movie_name"] for r in rows}
        parts = {"overall": lambda r: True, **{k: v for k, v in slices(traffic, heldout).items()
                                                if k not in ("overall", "source=plot")},
                 "movie not in eval": lambda r: r["movie_name"] not in seen}
        print(f"\ntraffic ({len(traffic)} rows, no labels): agreement with the teacher")
        print(f"{'slice':<22}{'n':>6}  " + "  ".join(f"{m:>8}" for m in models if m != "teacher"))
        for sname, pred in parts.items():
            idx = [i for i, r in enumerate(traffic) if pred(r)]
            if not idx:
                continue
            cells = []
            for m in models:
                if m == "teacher":
                    continue
                agree = sum(t_preds[m][i] == t_preds["teacher"][i] for i in idx) / len(idx)
                result[m].setdefault("_traffic", {})[sname] = {"n": len(idx),
                                                               "agreement": round(agree, 4)}
                cells.append(f"{agree:>8.3f}")
            print(f"{sname:<22}{len(idx):>6}  " + "  ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
