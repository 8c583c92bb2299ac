"""Write the committed example suite's data and prediction files (deterministic).

A support-ticket intent classifier: the teacher is an API model whose outputs were saved to
``teacher.jsonl``; the student is a small distilled model (``student.jsonl``) that holds up
overall but collapsed on German tickets. Run from the repository root:

    python examples/tickets/make_example.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = ["billing", "bug", "account", "feature"]
WORDS = {
    "billing": ["invoice", "charged", "refund", "payment", "card", "price"],
    "bug": ["crash", "error", "broken", "fails", "freeze", "bug"],
    "account": ["login", "password", "email", "profile", "locked", "2fa"],
    "feature": ["please add", "would love", "support for", "request", "dark mode", "export"],
}


def main(out: Path = Path(__file__).parent, n: int = 900, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    rows, teacher, student = [], [], []
    for i in range(n):
        label = LABELS[i % 4]
        lang = ["en", "en", "en", "de", "fr"][int(rng.integers(5))]
        channel = ["email", "chat", "phone"][int(rng.integers(3))]
        n_words = int(rng.integers(3, 40))
        words = rng.choice(WORDS[label], size=2)
        text = f"[{lang}] {' '.join(words)} " + " ".join(["lorem"] * max(0, n_words - 2))
        ex_id = f"t-{i:04d}"
        rows.append({"id": ex_id, "text": text.strip(), "label": label, "lang": lang,
                     "channel": channel, "n_words": n_words})
        t_right = rng.random() < 0.90
        if lang == "de":
            s_right = t_right and rng.random() < 0.74  # the collapsed slice
        elif t_right:
            s_right = rng.random() < 0.99
        else:
            s_right = rng.random() < 0.3  # the student fixes some of the teacher's errors
        for right, sink in ((t_right, teacher), (s_right, student)):
            pred = label if right else LABELS[(LABELS.index(label) + 1 + int(rng.integers(3))) % 4]
            p_top = float(np.round(0.55 + 0.4 * rng.random(), 4))
            rest = (1.0 - p_top) / 3
            scores = {lab: (p_top if lab == pred else rest) for lab in LABELS}
            scores = {k: round(v, 6) for k, v in scores.items()}
            scores[pred] = round(1.0 - sum(v for k, v in scores.items() if k != pred), 6)
            sink.append({"id": ex_id, "label": pred, "scores": scores})
    for name, data in (("eval.jsonl", rows), ("teacher.jsonl", teacher),
                       ("student.jsonl", student)):
        with (out / name).open("w", encoding="utf-8") as fh:
            for r in data:
                fh.write(json.dumps(r, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
