"""Scenarios the docs' shell blocks run in: a fresh repository laid out as the page assumes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from docblocks import ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}
GIT_ID = {"GIT_AUTHOR_NAME": "docs", "GIT_AUTHOR_EMAIL": "docs@example.com",
          "GIT_COMMITTER_NAME": "docs", "GIT_COMMITTER_EMAIL": "docs@example.com"}
LABELS = ("fresh", "rotten")


def scenario_env(home: Path) -> dict[str, str]:
    """The environment a reader's shell has: the venv's bin first (pytest, distill), offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PYTEST_"))}
    env.update(OFFLINE)
    env.update(GIT_ID)
    env["HF_HOME"] = str(home / "hf-home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def new_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "my-models"\nversion = "0"\n', "utf-8")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, capture_output=True)
    return root


# Fixed review-like rows: two sources, short and long texts, in a fixed order (no randomness).
_OPENINGS = ("a sharp and moving film", "dull and far too long", "the plot follows a young cook",
             "a clever script with real warmth", "lifeless acting and a weak ending",
             "the story moves from paris to rome")
_TAILS = ("", " that never finds its footing", " with a cast that gives it everything",
          " across three summers in a small town by the sea")


def eval_rows(n: int = 96) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        text = _OPENINGS[i % len(_OPENINGS)] + _TAILS[(i // len(_OPENINGS)) % len(_TAILS)]
        source = "plot" if "plot" in text or "story" in text else "review"
        rows.append({"id": f"r-{i:03d}", "text": text, "label": LABELS[i % 2], "source": source,
                     "n_words": len(text.split())})
    return rows


def lay_out_own_models(root: Path, models: tuple[Path, Path]) -> None:
    """README "Gating your own models": data/eval.jsonl and models/{teacher,student} at the
    repository root, as its suite names them."""
    import json

    (root / "data").mkdir()
    with (root / "data" / "eval.jsonl").open("w", encoding="utf-8") as f:
        for row in eval_rows():
            f.write(json.dumps(row) + "\n")
    for name, folder in zip(("teacher", "student"), models, strict=True):
        shutil.copytree(folder, root / "models" / name)


def lay_out_tickets(root: Path) -> None:
    """docs/history.md: the repository's own tickets example (suite, rubric, prediction files)."""
    for rel in ("suites/tickets.yaml", "rubrics/tickets.yaml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, root / rel)
    shutil.copytree(ROOT / "examples" / "tickets", root / "examples" / "tickets")


def lay_out_adopter(root: Path) -> None:
    """docs/github-actions.md: an adopting repository (the README's layout) with the harness,
    and so the gate action, at vendor/distill-harness."""
    for folder in ("data", "models", "suites", "rubrics", "baselines"):
        (root / folder).mkdir(exist_ok=True)
    (root / "data" / "eval.jsonl").write_text('{"id": "r-1", "text": "x", "label": "fresh"}\n')
    action = ROOT / ".github" / "actions" / "distill-gate"
    harness = root / "vendor" / "distill-harness"
    shutil.copytree(action, harness / ".github" / "actions" / "distill-gate")
    shutil.copyfile(ROOT / "pyproject.toml", harness / "pyproject.toml")


def lay_out_support(root: Path) -> None:
    """docs/endpoints.md: what its support suite names besides the served teacher: the data,
    a rubric, and the student's folder. The page runs only the dry run, which by contract
    loads no model and sends no request, so the folder holds just the files a transformers
    folder has (they are hashed into its fingerprint)."""
    import json

    (root / "data").mkdir()
    with (root / "data" / "support.jsonl").open("w", encoding="utf-8") as f:
        for i, (question, answer) in enumerate((("How do I reset my password?", "Settings > Reset"),
                                               ("Can I change my plan?", "Yes, under Billing"),
                                               ("Where is my invoice?", "Billing > Invoices"))):
            f.write(json.dumps({"id": f"q-{i}", "question": question, "answer": answer}) + "\n")
    (root / "rubrics").mkdir()
    (root / "rubrics" / "support.yaml").write_text(
        "schema_version: 1\nid: support-gate\nversion: 1\ncriteria:\n"
        "  - {name: fidelity, metric: teacher_chrf, compare: value, min: 0.8, scope: overall}\n",
        "utf-8")
    student = root / "models" / "student"
    student.mkdir(parents=True)
    (student / "config.json").write_text('{"model_type": "gpt2"}\n', "utf-8")
    (student / "tokenizer_config.json").write_text("{}\n", "utf-8")
    (student / "model.safetensors").write_bytes(b"not loaded by a dry run")
