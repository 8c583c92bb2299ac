"""metric_store: per-example text metric values kept between runs, keyed by what they depend on."""

from __future__ import annotations

import numpy as np

from harness.metric_store import metric_store, stored_values
from harness.metrics import get_metric
from harness.outputs import EvalContext, TextOutputs


def _ctx(teacher=("a b", "c d")) -> EvalContext:
    return EvalContext(labels=(), gold=None, teacher=TextOutputs(texts=tuple(teacher)),
                       references=(("a b",), ("c e", "c d")))


def test_values_are_computed_once_and_read_back(tmp_path):
    chrf = get_metric("chrf")
    out = TextOutputs(texts=("a b", "c x"))
    calls = []

    def compute():
        calls.append(1)
        return np.array([1.0, 0.25])

    with metric_store(tmp_path):
        first = stored_values(chrf, _ctx(), out, compute)
        again = stored_values(chrf, _ctx(), TextOutputs(texts=("a b", "c x")), compute)
    assert calls == [1] and list(first) == list(again) == [1.0, 0.25]
    assert len(list((tmp_path / "memo" / "metrics").glob("*.npy"))) == 1


def test_another_input_is_another_entry(tmp_path):
    chrf, teacher_chrf = get_metric("chrf"), get_metric("teacher_chrf")
    out = TextOutputs(texts=("a b", "c x"))
    with metric_store(tmp_path):
        base = chrf.per_example(_ctx(), out)
        assert list(chrf.per_example(_ctx(), TextOutputs(texts=("a b", "c d")))) != list(base)
        # the teacher's outputs are an input of teacher_chrf
        one = teacher_chrf.per_example(_ctx(), out)
        two = teacher_chrf.per_example(_ctx(teacher=("a b", "c x")), out)
    assert one[1] < two[1] == 1.0
    assert len(list((tmp_path / "memo" / "metrics").glob("*.npy"))) == 4


def test_nothing_is_stored_outside_a_store_or_for_undeclared_metrics(tmp_path):
    out = TextOutputs(texts=("a b", "c x"))
    values = get_metric("chrf").per_example(_ctx(), out)
    assert values.shape == (2,)
    with metric_store(tmp_path):
        get_metric("mean_output_tokens")  # not declared stored
        assert not get_metric("mean_output_tokens").stored and get_metric("chrf").stored
    with metric_store(None):
        get_metric("chrf").per_example(_ctx(), out)
    assert not (tmp_path / "memo" / "metrics").exists()


def test_a_corrupt_entry_is_recomputed(tmp_path):
    chrf = get_metric("chrf")
    out = TextOutputs(texts=("a b", "c x"))
    with metric_store(tmp_path):
        expected = chrf.per_example(_ctx(), out)
        (entry,) = (tmp_path / "memo" / "metrics").glob("*.npy")
        entry.write_bytes(b"not numpy")
        assert list(chrf.per_example(_ctx(), out)) == list(expected)
