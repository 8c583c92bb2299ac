"""The prediction cache, the per-example answer store (and the progress that model runs draw)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import harness
import harness.cache as cache_mod
from harness.cache import Answer, AnswerStore, PredictionCache, decode_entry, predict_cached
from harness.data import Dataset
from harness.models.base import Model, Predictions, Progress
from harness.progress import LineProgress, StageProgress, make_progress
from harness.spec_types import ModelSpec

LABELS = ("fresh", "rotten")
FIXED_SCORES = {"a": [0.9, 0.1], "b": [0.2, 0.8], "c": [0.55, 0.45]}


def _data(ids: Sequence[str] = ("a", "b", "c"), sha: str = "d" * 64) -> Dataset:
    return Dataset(
        path=Path("eval.jsonl"),
        sha256=sha,
        ids=tuple(ids),
        inputs=tuple(f"text of {i}" for i in ids),
        labels=None,
    )


class CountingModel(Model):
    """A fake model with fixed outputs that counts how often it is asked to predict."""

    def __init__(self, fingerprint: str = "f" * 64, generation: bool = False):
        super().__init__(ModelSpec(type="callable", source=Path("s.yaml"), field="teacher"), "teacher")
        self._fp = fingerprint
        self.generation = generation
        self.calls = 0

    def fingerprint(self) -> str:
        return self._fp

    def predict(self, data: Dataset, labels: Sequence[str], progress: Progress | None = None) -> Predictions:
        self.calls += 1
        if self.generation:
            return Predictions(ids=data.ids, outputs=tuple(f"out {i}\n\u00e9" for i in data.ids))
        scores = np.array([FIXED_SCORES[i] for i in data.ids])
        return Predictions(
            ids=data.ids,
            labels=tuple(labels[int(j)] for j in scores.argmax(axis=1)),
            scores=scores,
        )


def _entry(cache: PredictionCache, model: CountingModel, data: Dataset) -> Path:
    path = cache.path(model.fingerprint(), data, LABELS)
    assert path is not None
    return path


def test_second_run_is_served_from_the_cache(tmp_path):
    cache = PredictionCache(tmp_path / "cache")
    model, data = CountingModel(), _data()
    first, hit = predict_cached(model, data, LABELS, cache)
    assert (hit, model.calls) == (False, 1)
    second, hit = predict_cached(model, data, LABELS, cache)
    assert (hit, model.calls) == (True, 1)
    assert second.ids == first.ids and second.labels == first.labels
    assert second.outputs is None
    assert second.scores is not None and second.scores.dtype == first.scores.dtype
    np.testing.assert_array_equal(second.scores, first.scores)  # exact round trip
    assert cache.recomputed == []
    assert (tmp_path / "cache" / ".gitignore").read_text().endswith("*\n")
    assert [p.name for p in (tmp_path / "cache" / "predictions").iterdir()] == [
        _entry(cache, model, data).name
    ]


def test_a_fresh_cache_object_reads_what_another_wrote(tmp_path):
    model, data = CountingModel(), _data()
    predict_cached(model, data, LABELS, PredictionCache(tmp_path))
    _, hit = predict_cached(model, data, LABELS, PredictionCache(tmp_path))
    assert hit and model.calls == 1


def test_generation_outputs_round_trip(tmp_path):
    cache = PredictionCache(tmp_path)
    model, data = CountingModel(generation=True), _data()
    first, _ = predict_cached(model, data, (), cache)
    second, hit = predict_cached(model, data, (), cache)
    assert hit and second.outputs == first.outputs and second.scores is None
    assert second.labels is None


def test_float32_scores_keep_their_dtype(tmp_path):
    cache, data = PredictionCache(tmp_path), _data()
    preds = Predictions(ids=data.ids, labels=("fresh",) * 3, scores=np.full((3, 2), 0.5, dtype=np.float32))
    cache.store("f" * 64, data, preds, LABELS)
    back = cache.load("f" * 64, data, LABELS)
    assert back is not None and back.scores is not None and back.scores.dtype == np.float32


def test_caching_off(tmp_path):
    model, data = CountingModel(), _data()
    for cache in (None, PredictionCache(None)):
        _, hit = predict_cached(model, data, LABELS, cache)
        assert not hit
    assert model.calls == 2
    off = PredictionCache(None)
    off.store("f" * 64, data, model.predict(data, LABELS))
    assert off.load("f" * 64, data) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change",
    ["fingerprint", "data_sha", "labels", "format_version"],
)
def test_key_covers_what_decides_the_outputs(tmp_path, monkeypatch, change):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    predict_cached(model, data, LABELS, cache)
    labels: Sequence[str] = LABELS
    if change == "fingerprint":
        model = CountingModel("e" * 64)
    elif change == "data_sha":
        data = _data(sha="c" * 64)
    elif change == "labels":
        labels = ("rotten", "fresh")  # the columns of scores follow the suite's order
    else:
        monkeypatch.setattr(cache_mod, "OUTPUT_FORMAT_VERSION", harness.OUTPUT_FORMAT_VERSION + 1)
    calls = model.calls
    _, hit = predict_cached(model, data, labels, cache)
    assert not hit and model.calls == calls + 1
    assert len(list((tmp_path / "predictions").iterdir())) == 2


def _corrupt_truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _corrupt_flip(raw: bytes) -> bytes:
    i = raw.rindex(b"0.8")  # a score digit inside the payload
    return raw[:i] + b"0.7" + raw[i + 3 :]


def _corrupt_header(raw: bytes) -> bytes:
    return b"garbage" + raw


def _corrupt_empty(raw: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_header, _corrupt_empty])
def test_corrupt_entries_are_recomputed_and_overwritten(tmp_path, corrupt):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    good, _ = predict_cached(model, data, LABELS, cache)
    path = _entry(cache, model, data)
    original = path.read_bytes()
    path.write_bytes(corrupt(original))

    again, hit = predict_cached(model, data, LABELS, cache)
    assert not hit and model.calls == 2
    assert cache.recomputed == [path]
    np.testing.assert_array_equal(again.scores, good.scores)
    assert path.read_bytes() == original  # overwritten with the fresh, identical outputs
    _, hit = predict_cached(model, data, LABELS, cache)
    assert hit and model.calls == 2


def test_an_entry_whose_ids_differ_from_the_data_is_not_trusted(tmp_path):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    predict_cached(model, data, LABELS, cache)
    # The same sha256 with other ids cannot happen honestly; the entry must not be used.
    reordered = _data(ids=("b", "a", "c"))
    assert cache.load(model.fingerprint(), reordered, LABELS) is None
    assert cache.recomputed == [_entry(cache, model, data)]


def test_a_checksum_valid_entry_under_another_key_is_refused(tmp_path):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    predict_cached(model, data, LABELS, cache)
    raw = _entry(cache, model, data).read_bytes()
    other_key = cache_mod.cache_key("e" * 64, data.sha256, LABELS)
    with pytest.raises(cache_mod.CorruptEntry, match="key"):
        decode_entry(raw, other_key, data)


def test_entry_layout_is_plain_json(tmp_path):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    predict_cached(model, data, LABELS, cache)
    head, body = _entry(cache, model, data).read_bytes().split(b"\n", 1)
    header, payload = json.loads(head), json.loads(body)
    assert header["format"] == "distill-harness-predictions" and header["version"] == 1
    assert payload["key"] == {
        "fingerprint": "f" * 64,
        "data_sha256": "d" * 64,
        "labels": list(LABELS),
        "output_format_version": harness.OUTPUT_FORMAT_VERSION,
    }
    assert payload["ids"] == ["a", "b", "c"] and payload["scores"][0] == [0.9, 0.1]


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    cache, model, data = PredictionCache(tmp_path), CountingModel(), _data()
    predict_cached(model, data, LABELS, cache)
    path = _entry(cache, model, data)
    before = path.read_bytes()

    def crash(fd: int) -> None:  # the bytes are in the temporary file; the rename never happens
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    changed = Predictions(ids=data.ids, labels=("fresh",) * 3, scores=np.full((3, 2), 0.5))
    with pytest.raises(OSError, match="disk full"):
        cache.store(model.fingerprint(), data, changed, LABELS)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

    fresh = _data(sha="c" * 64)
    with pytest.raises(OSError, match="disk full"):
        cache.store(model.fingerprint(), fresh, changed, LABELS)
    assert cache.load(model.fingerprint(), fresh, LABELS) is None
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_predictions_with_foreign_ids_are_not_stored(tmp_path):
    class Shuffling(CountingModel):
        def predict(self, data, labels, progress=None):
            preds = super().predict(data, labels, progress)
            return preds.subset([2, 1, 0])

    cache, model, data = PredictionCache(tmp_path), Shuffling(), _data()
    predict_cached(model, data, LABELS, cache)
    _, hit = predict_cached(model, data, LABELS, cache)
    assert not hit and model.calls == 2


# -- progress ------------------------------------------------------------------------------


# --------------------------------------------------------------------------- the answer store

HEADER = {"fingerprint": "f" * 64, "data_sha256": "d" * 64}


def _answer(i: int) -> Answer:
    return Answer(text=f"answer {i}", finish_reason="stop", input_tokens=10 + i, output_tokens=i,
                  latency_s=0.5, model="served-m", system_fingerprint="fp1")


def test_answer_store_puts_and_gets_items_and_a_new_object_resumes(tmp_path):
    store = AnswerStore(tmp_path, "endpoint-x", HEADER)
    assert store.get("a") is None and store.read() == {}
    assert not (tmp_path / "answers").exists()  # reading creates nothing
    with store:
        store.put("a", _answer(1))
        store.put("b", _answer(2))
        store.put("a", _answer(3))  # a repeat keeps the first answer
    assert store.get("a") == _answer(1)
    again = AnswerStore(tmp_path, "endpoint-x", HEADER)
    assert again.read() == {"a": _answer(1), "b": _answer(2)}  # usage kept with each answer
    assert again.read(["b", "zz"]) == {"b": _answer(2)}
    assert "b" in again and "zz" not in again
    with again:
        again.put("c", _answer(4))
    assert set(AnswerStore(tmp_path, "endpoint-x", HEADER).read()) == {"a", "b", "c"}
    lines = store.path.read_text("utf-8").splitlines()
    assert json.loads(lines[0]) == {"format": "distill-harness-answers", "version": 1, **HEADER}
    assert [json.loads(x)["key"] for x in lines[1:]] == ["a", "b", "a", "c"]  # append-only
    assert (tmp_path / ".gitignore").exists()


def test_answer_store_drops_a_torn_line_and_starts_over_for_another_header(tmp_path):
    with AnswerStore(tmp_path, "s", HEADER) as store:
        for i in range(3):
            store.put(f"k{i}", _answer(i))
    raw = store.path.read_bytes()
    store.path.write_bytes(raw[:-9])  # killed while writing the last line
    torn = AnswerStore(tmp_path, "s", HEADER)
    assert set(torn.read()) == {"k0", "k1"}
    with torn:
        torn.put("k2", _answer(2))
    assert all(json.loads(x) for x in store.path.read_text("utf-8").splitlines())
    assert AnswerStore(tmp_path, "s", HEADER).read() == {f"k{i}": _answer(i) for i in range(3)}
    other = AnswerStore(tmp_path, "s", {**HEADER, "data_sha256": "e" * 64})
    assert other.read() == {}
    with other:
        other.put("k9", _answer(9))
    assert AnswerStore(tmp_path, "s", HEADER).read() == {}
    assert set(AnswerStore(tmp_path, "s", {**HEADER, "data_sha256": "e" * 64}).read()) == {"k9"}


class PerExampleModel(CountingModel):
    """A fake that answers example by example from its own store (as an endpoint does)."""

    answers_per_example = True

    def __init__(self, root: Path):
        super().__init__(generation=True)
        self.root = root

    def predict(self, data: Dataset, labels: Sequence[str], progress: Progress | None = None) -> Predictions:
        self.calls += 1
        store = AnswerStore(self.root, "fake", {"fingerprint": self.fingerprint()})
        had = store.read(data.ids)
        with store:
            for i in data.ids:
                if i not in had:
                    store.put(i, Answer(text=f"out {i}", input_tokens=3, output_tokens=2))
        got = store.read(data.ids)
        return Predictions(ids=data.ids, outputs=tuple(got[i].text for i in data.ids),
                           input_tokens=np.array([got[i].input_tokens for i in data.ids]),
                           output_tokens=np.array([got[i].output_tokens for i in data.ids]),
                           cached=np.array([i in had for i in data.ids]))


def test_usage_counts_requests_of_this_run_and_cached_answers(tmp_path):
    cache = PredictionCache(tmp_path / "cache")
    model = PerExampleModel(tmp_path / "cache")
    pred, all_cached = predict_cached(model, _data(("a", "b")), [], cache)
    assert not all_cached and pred.usage() == {"requests": 2, "cached": 0, "input_tokens": 6,
                                               "output_tokens": 4}
    pred, all_cached = predict_cached(model, _data(("a", "b", "c"), sha="e" * 64), [], cache)
    assert not all_cached and pred.usage() == {"requests": 1, "cached": 2, "input_tokens": 9,
                                               "output_tokens": 6}
    pred, all_cached = predict_cached(model, _data(), [], cache)
    assert all_cached and pred.usage()["requests"] == 0 and pred.usage()["cached"] == 3
    # Its own store is its cache: no whole-set entry is written beside it.
    assert not (tmp_path / "cache" / "predictions").exists()
    # A model without a store of its own: a whole-set hit is every answer cached.
    whole = CountingModel(generation=True)
    first, _ = predict_cached(whole, _data(), [], cache)
    hit, was = predict_cached(whole, _data(), [], cache)
    assert was and hit.cached is not None and hit.cached.all() and first.cached is None


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_per_stage_off_a_terminal_and_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert isinstance(make_progress("teacher", stream=io.StringIO()), StageProgress)
    assert isinstance(make_progress("teacher", stream=FakeTTY()), LineProgress)
    assert make_progress("teacher", enabled=False, stream=FakeTTY()) is None
    assert isinstance(make_progress("teacher", enabled=True, stream=io.StringIO()), LineProgress)
    monkeypatch.setenv("CI", "true")
    assert isinstance(make_progress("teacher", stream=FakeTTY()), StageProgress)


def test_a_stage_line_is_written_once_when_the_stage_ends():
    now = [10.0]
    out = io.StringIO()
    stage = StageProgress("teacher", out, clock=lambda: now[0], unit="requests")
    for done in range(0, 601, 50):
        now[0] += 0.5
        stage(done, 600)
    assert out.getvalue() == "teacher: 600/600 requests in 6.0s, 100.0 requests/s\n"
    stage(0, 10)  # a second stage under the same label: its own line
    now[0] += 2.0
    stage(10, 10)
    assert out.getvalue().splitlines()[-1] == "teacher: 10/10 requests in 2.0s, 5.0 requests/s"
    assert "\r" not in out.getvalue()


def test_progress_line_is_throttled_and_ends_with_a_newline():
    now = [100.0]
    out = FakeTTY()
    line = LineProgress("teacher", out, clock=lambda: now[0])
    for done in range(32, 2001, 32):  # a batch every 10 ms
        now[0] += 0.01
        line(done, 2000)
    now[0] += 0.01
    line(2000, 2000)
    text = out.getvalue()
    draws = text.split("\r")[1:]
    assert len(draws) <= 4 * 0.64 + 2  # 0.64 s of work, at most 4 draws a second + the last
    assert text.endswith("\n") and text.count("\n") == 1
    assert draws[-1].startswith("teacher: 2000/2000 examples, ")
    assert draws[-1].rstrip().endswith(" ex/s")
    assert draws[0].startswith("teacher: 32/2000 examples, 3200.0 ex/s")
