"""Shared pytester helpers: a tiny repository on fixed, chosen prediction files.

The repository is a copy of ``tests/data/tinyrepo``: a ``pyproject.toml`` (the root marker),
``suites/tiny.yaml``, ``rubrics/tiny.yaml`` and ``data/{eval,teacher,student}.jsonl``. The
student is wrong on six of the eight German examples, so ``slice_gap[lang=de]`` fails; the
"meeting" variant gives the student the teacher's predictions and every check passes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

# pytester's in-process runs drop the modules a run imported; numpy cannot be imported twice in
# one process, so import the heavy core here, once, before any run.
for _name in ("numpy", "scipy.stats", "scipy.special", "sklearn.metrics", "jsonschema",
              "harness.runner", "harness.session", "harness.stats", "harness.gate",
              "harness.cache", "harness.audit", "harness.coverage", "harness.pockets",
              "harness.economics", "harness.baseline", "harness.report.terminal",
              "harness.report.markdown", "harness.report.github"):
    try:
        __import__(_name)
    except ImportError:  # a piece another engineer has not landed yet
        pass

TINY = Path(__file__).resolve().parents[1] / "data" / "tinyrepo"

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def copy_tiny_repo(dest: Path) -> Path:
    """Copy the tiny repository into ``dest`` (which may exist) and return ``dest``."""
    shutil.copytree(TINY, dest, dirs_exist_ok=True)
    return dest


def make_meeting(root: Path) -> None:
    """Give the student the teacher's predictions: every check of the tiny rubric passes."""
    shutil.copyfile(root / "data" / "teacher.jsonl", root / "data" / "student.jsonl")


def edit_jsonl(path: Path, index: int, **changes: object) -> None:
    """Change fields of line ``index`` (0-based) of a JSONL file; a value None removes the field."""
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    for key, value in changes.items():
        if value is None:
            rows[index].pop(key, None)
        else:
            rows[index][key] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")


class TinyRepo:
    """The tiny repository at ``path``, with the edits the tests make to it."""

    def __init__(self, path: Path):
        self.path = path

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def make_meeting(self) -> None:
        make_meeting(self.path)

    def edit_jsonl(self, rel: str, index: int, **changes: object) -> None:
        edit_jsonl(self.path / rel, index, **changes)

    def replace(self, rel: str, old: str, new: str) -> None:
        """Replace ``old`` (which must occur) by ``new`` in the text file ``rel``."""
        path = self.path / rel
        text = path.read_text("utf-8")
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new), "utf-8")


@pytest.fixture
def tiny_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> TinyRepo:
    """The tiny repository in pytester's folder (the working directory), offline."""
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return TinyRepo(copy_tiny_repo(pytester.path))
