"""The rows a report shows behind a check or a pocket, and in which order (harness.examples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data import Dataset
from harness.examples import ExampleSource, _holds, _Picker
from harness.gate import GateInputs
from harness.metrics import get_metric
from harness.models.base import Predictions
from harness.outputs import EvalContext, LabelOutputs

LABELS = ("a", "b")
GOLD = ["a", "a", "a", "a", "b", "b", "b", "a"]
TEACHER = ["a", "a", "b", "a", "b", "b", "a", "a"]
STUDENT = ["b", "a", "a", "b", "b", "a", "b", "a"]


def _source() -> ExampleSource:
    ids = tuple(f"e{i}" for i in range(len(GOLD)))

    def codes(labels: list[str]) -> np.ndarray:
        return np.array([LABELS.index(x) for x in labels])

    teacher = LabelOutputs(labels=codes(TEACHER))
    inputs = GateInputs(ctx=EvalContext(labels=LABELS, gold=codes(GOLD), teacher=teacher),
                        student=LabelOutputs(labels=codes(STUDENT)),
                        slices={"overall": np.arange(len(ids))}, ids=ids,
                        features={"lang": np.array(["de", "en"] * 4, dtype=object)})
    data = Dataset(path=Path("data.jsonl"), sha256="0", ids=ids, inputs=ids, labels=tuple(GOLD))
    return ExampleSource("eval", data, inputs, Predictions(ids=ids, labels=tuple(TEACHER)),
                         Predictions(ids=ids, labels=tuple(STUDENT)))


def test_the_gate_s_ids_come_first_then_rows_worse_than_the_teacher_then_differing_rows():
    source, accuracy = _source(), get_metric("accuracy")
    # worse than the teacher (teacher right, student wrong): rows 0, 3, 5; differing also 2, 6
    assert _Picker(10, [accuracy]).order(source, np.arange(8), accuracy, ["e5", "nope"],
                                         "teacher") == [5, 0, 3, 2, 6]
    assert _Picker(2, [accuracy]).order(source, np.arange(8), accuracy, ["e5"],
                                        "teacher") == [5, 0]
    assert _Picker(10, [accuracy]).order(source, np.array([7, 6, 2]), None, [],
                                         None) == [6, 2]  # no metric: differing rows, in order
    assert _Picker(10, [accuracy]).order(source, np.array([], dtype=float), accuracy, [],
                                         "teacher") == []


def test_a_pocket_s_rows_come_from_its_predicates_or_else_its_ids():
    from harness.results import Pocket, Predicate

    source = _source()
    pocket = Pocket(slice="lang=en", predicates=(Predicate("lang", "eq", "en"),), n=4,
                    teacher=0.5, student=0.5, delta=0.0, p_value=1.0, q_value=1.0,
                    confirmed=False, ids=("e3", "e1"))
    assert _Picker(10, []).pocket_rows(source, pocket).tolist() == [1, 3, 5, 7]
    unknown = Pocket(slice="tier=pro", predicates=(Predicate("tier", "eq", "pro"),), n=2,
                     teacher=0.5, student=0.5, delta=0.0, p_value=1.0, q_value=1.0,
                     confirmed=False, ids=("e3", "e1", "gone"))
    assert _Picker(10, []).pocket_rows(source, unknown).tolist() == [3, 1]


def test_holds_compares_with_python_equality():
    col = np.array(["de", None, 1, True, 1.0, "de"], dtype=object)
    assert _holds(col, "eq", "de").tolist() == [True, False, False, False, False, True]
    assert _holds(col, "ne", 1).tolist() == [True, True, False, False, False, True]
    assert _holds(np.array([1.0, np.nan, 3.0]), "gte", 2).tolist() == [False, False, True]
    assert _holds(col, "in", ["de", None]).tolist() == [True, True, False, False, False, True]
