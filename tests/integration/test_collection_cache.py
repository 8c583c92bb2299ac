"""Collection reads no data row a second time: the planned checks are kept in the cache.

The first ``--collect-only`` of a suite loads its data to name the ``by:`` slices and records the
planned checks in the cache, keyed by the suite and rubric files, the data file's sha256 and
the harness version. Collecting it again hashes the data and reads no row; the data are loaded
(and checked) when the first item runs. Here the data reader is replaced, after the first
collection, by one that fails as an unreadable file would: a second collection still names every
item, and the run errors each item with the one message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import data as data_module
from harness.errors import DataError

TinyRepo = Any  # the tiny_repo fixture's object (tests/integration/conftest.py)

SUITE = "suites/tiny.yaml"
ITEMS = ["suites/tiny.yaml::quality_ratio[[]overall[]]",
         "suites/tiny.yaml::slice_gap[[]lang=de[]]",
         "*7 tests collected*"]


def collect(pytester: pytest.Pytester, *flags: str) -> pytest.RunResult:
    return pytester.runpytest("--distill-suite", SUITE, "--collect-only", "-q",
                              "-p", "no:cacheprovider", *flags)


def unreadable_data(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make every data read fail as an unreadable file does; the list records each attempt."""
    reads: list[Path] = []

    def refuse(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads.append(Path(path))
        raise DataError("cannot read the file (permission denied)", file=Path(path).name)

    monkeypatch.setattr(data_module, "read_table", refuse)
    monkeypatch.setattr(data_module, "read_rows", refuse)
    return reads


def test_a_second_collection_reads_no_data_row(tiny_repo: TinyRepo, pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch):
    first = collect(pytester)
    assert first.ret == 0
    first.stdout.fnmatch_lines(ITEMS)
    assert list((tiny_repo / ".distill-cache" / "planned").glob("*.json"))

    reads = unreadable_data(monkeypatch)
    second = collect(pytester)
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines(ITEMS)
    assert reads == []
    second.stdout.no_fnmatch_line("*distill verdict*")


def test_data_that_cannot_be_read_at_the_run_errors_every_item_with_one_message(
        tiny_repo: TinyRepo, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    assert collect(pytester).ret == 0
    reads = unreadable_data(monkeypatch)
    result = pytester.runpytest("--distill-suite", SUITE, "-p", "no:cacheprovider")
    result.assert_outcomes(failed=7)
    result.stdout.fnmatch_lines(["*the suite could not run: eval.jsonl: cannot read the file "
                                 "(permission denied)*"])
    assert [p.name for p in reads] == ["eval.jsonl"]  # loaded once, at the first item


def test_without_the_cache_collection_loads_the_data(tiny_repo: TinyRepo,
                                                     pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch):
    assert collect(pytester).ret == 0
    reads = unreadable_data(monkeypatch)
    result = collect(pytester, "--distill-no-cache")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval.jsonl: cannot read the file (permission denied)*"])
    assert [p.name for p in reads] == ["eval.jsonl"]


def test_changed_data_are_planned_again_and_checked_at_collection(tiny_repo: TinyRepo,
                                                                  pytester: pytest.Pytester):
    """The plan's key holds the data file's sha256: an edit is never hidden by the cache."""
    assert collect(pytester).ret == 0
    tiny_repo.edit_jsonl("data/eval.jsonl", 2, label="maybe")
    result = collect(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval.jsonl*maybe*"])


def test_a_new_slice_value_is_a_new_item_on_the_next_collection(tiny_repo: TinyRepo,
                                                                pytester: pytest.Pytester):
    assert collect(pytester).ret == 0
    tiny_repo.edit_jsonl("data/eval.jsonl", 0, lang="it")
    result = collect(pytester)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["suites/tiny.yaml::slice_gap[[]lang=it[]]"])


def modules_a_fresh_collection_imports(repo: TinyRepo, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a ``--collect-only`` in a new interpreter imports (it must succeed)."""
    probe = ("import json, sys, pytest\n"
             f"assert pytest.main(['--distill-suite', {SUITE!r}, '--collect-only', '-q', '-q', "
             "'-p', 'no:cacheprovider']) == 0\n"
             f"print('IMPORTED', json.dumps([m for m in {names!r} if m in sys.modules]))\n")
    run = subprocess.run([sys.executable, "-c", probe], cwd=repo.path, capture_output=True,
                         text=True, timeout=300, check=True)
    return list(json.loads(run.stdout.split("IMPORTED", 1)[1]))


def test_a_collection_that_finds_its_record_imports_no_statistics(tiny_repo: TinyRepo,
                                                                  pytester: pytest.Pytester):
    """What makes a cached collection instant: neither the data (nor pyarrow, which reads it)
    nor the gate's scipy is loaded."""
    heavy = ("scipy", "harness.gate", "harness.runner", "pyarrow")
    assert collect(pytester).ret == 0
    assert modules_a_fresh_collection_imports(tiny_repo, heavy) == []
    shutil.rmtree(tiny_repo / ".distill-cache")
    # plans from data: the gate, the runner and pyarrow (scipy only where a statistic is
    # computed)
    assert modules_a_fresh_collection_imports(tiny_repo, heavy) == list(heavy[1:])


def test_a_predictions_file_broken_after_a_collection_is_reported_at_the_next(
        tiny_repo: TinyRepo, pytester: pytest.Pytester):
    """A record stands for the bytes a collection checked: an edited predictions file is
    checked again at collection, with the message a first collection gives."""
    assert collect(pytester).ret == 0
    tiny_repo.edit_jsonl("data/student.jsonl", 3, label="maybe")
    again = collect(pytester)
    shutil.rmtree(tiny_repo / ".distill-cache")
    first = collect(pytester)
    assert again.ret == first.ret != 0
    assert [ln for ln in again.stdout.lines if "maybe" in ln] == \
        [ln for ln in first.stdout.lines if "maybe" in ln] != []
