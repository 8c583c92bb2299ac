"""Fixtures every test folder shares: a repository maker, a git helper and the tiny repository.

Fixtures, not importable helpers: a module imported by name from a conftest collides with
another folder's conftest in a full run, while a fixture is found wherever a test asks for it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

#: The tiny repository of fixed, chosen prediction files (see its README in tests/data).
TINY = Path(__file__).resolve().parent / "data" / "tinyrepo"

#: A git identity and a bare environment, so a test's commits never read the user's config.
_GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin:/usr/local/bin"}


class Git(Protocol):
    def __call__(self, root: Path, *args: str, date: str | None = None) -> str: ...


def _git(root: Path, *args: str, date: str | None = None) -> str:
    env = {**_GIT_ENV, "HOME": str(root)}
    if date:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="session")
def git() -> Git:
    """``git(root, *args, date=None)``: run git in ``root`` with a fixed identity (and, given
    ``date``, that author and committer date); returns its standard output."""
    return _git


def jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    """The text of a JSONL file: one JSON object a line, a newline after the last."""
    return "".join(json.dumps(dict(r)) + "\n" for r in rows)


class RepoMaker:
    """Writes a small repository: ``pyproject.toml`` (the root marker), ``suites/<name>.yaml``,
    ``rubrics/r.yaml``, the eval data and the models' prediction files."""

    jsonl = staticmethod(jsonl)

    def __call__(self, root: Path, *, suite: str, rubric: str, rows: Sequence[Mapping[str, Any]],
                 data: str = "data/eval.jsonl", predictions: Mapping[str, str] | None = None,
                 name: str = "s", project: str = "demo") -> Path:
        """Write the repository under ``root``; returns the suite file.

        ``suite`` and ``rubric`` are the files' text, ``rows`` the eval data (JSONL at
        ``data``), ``predictions`` maps a file under ``preds/`` (``teacher``) to its text.
        """
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text(f"[project]\nname = '{project}'\n", "utf-8")
        for folder in ("suites", "rubrics", "data", "preds"):
            (root / folder).mkdir(exist_ok=True)
        (root / "suites" / f"{name}.yaml").write_text(suite, "utf-8")
        (root / "rubrics" / "r.yaml").write_text(rubric, "utf-8")
        (root / data).parent.mkdir(parents=True, exist_ok=True)
        (root / data).write_text(jsonl(rows), "utf-8")
        for model, text in (predictions or {}).items():
            (root / "preds" / f"{model}.jsonl").write_text(text, "utf-8")
        return root / "suites" / f"{name}.yaml"


@pytest.fixture(scope="session")
def make_repo() -> RepoMaker:
    """``make_repo(root, suite=…, rubric=…, rows=…, predictions={"teacher": …})``: a small
    repository with one suite on prediction files (see :class:`RepoMaker`); returns the suite
    file. ``make_repo.jsonl(rows)`` is the JSONL text of some rows."""
    return RepoMaker()


@pytest.fixture
def tiny_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``tests/data/tinyrepo`` at ``tmp_path/repo``, the working directory of the
    test (so messages show paths relative to it)."""
    root = tmp_path / "repo"
    shutil.copytree(TINY, root)
    monkeypatch.chdir(root)
    return root
