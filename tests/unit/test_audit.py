"""The teacher audit on constructed teacher and student errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.audit import audit_teacher

LABELS = ["fresh", "rotten"]
IDS = [f"e{i}" for i in range(20)]
GOLD = ["fresh"] * 10 + ["rotten"] * 10
FLIP = {"fresh": "rotten", "rotten": "fresh"}
TEACHER_WRONG = {2, 5, 11, 14, 17}
STUDENT_COPIES = {2, 11, 17}  # the student repeats these teacher errors
STUDENT_OWN = {7}  # and makes one error of its own
TEACHER = [FLIP[g] if i in TEACHER_WRONG else g for i, g in enumerate(GOLD)]
STUDENT = [FLIP[g] if i in STUDENT_COPIES | STUDENT_OWN else g for i, g in enumerate(GOLD)]
# top teacher score per example: confident errors on 11 > 2 > 17 > 14 (= the cut-off), 5 unsure
TOP = {0: 0.99, 2: 0.95, 5: 0.6, 11: 0.99, 14: 0.9, 17: 0.92}


def teacher_scores() -> np.ndarray:
    rows = []
    for i, label in enumerate(TEACHER):
        top = TOP.get(i, 0.8)
        rows.append([top, 1 - top] if label == "fresh" else [1 - top, top])
    return np.array(rows)


def run(**kwargs: object) -> dict:
    args: dict = {
        "ids": IDS,
        "gold": GOLD,
        "teacher_labels": TEACHER,
        "student_labels": STUDENT,
        "labels": LABELS,
        "teacher_scores": teacher_scores(),
        "slices": {"first_half": np.arange(10), "second_half": np.arange(20) >= 10},
    }
    args.update(kwargs)
    return audit_teacher(**args)


def test_accuracy_suspects_and_inherited_errors() -> None:
    audit = run(max_ids=3)
    assert audit["accuracy"] == pytest.approx(0.75)
    assert audit["teacher_error_rate"] == pytest.approx(0.25)
    assert audit["suspect_ids"] == ["e11", "e2", "e17"]  # e14 would be next; e5 is unsure
    assert audit["n_suspect"] == 4
    assert audit["suspects"][0] == {
        "id": "e11",
        "gold": "rotten",
        "teacher": "fresh",
        "student": "fresh",
        "score": 0.99,
    }
    assert audit["inherited_error_rate"] == pytest.approx(3 / 20)
    assert audit["inherited_ids"] == ["e2", "e11", "e17"]
    assert audit["inherited_share_of_teacher_errors"] == pytest.approx(3 / 5)
    assert json.loads(json.dumps(audit)) == audit


def test_suspect_ties_keep_data_order_and_default_limit() -> None:
    audit = run()
    assert audit["suspect_ids"] == ["e11", "e2", "e17", "e14"]
    scores = teacher_scores()
    scores[2] = scores[11]  # e2 now ties e11 at 0.99
    assert run(teacher_scores=scores)["suspect_ids"][:2] == ["e2", "e11"]
    assert run(teacher_scores=None)["suspect_ids"] == []


def test_weak_slice_under_a_floor_and_per_slice_table() -> None:
    audit = run(floor=0.75)
    assert audit["weak_slices"] == [
        {"slice": "second_half", "n": 10, "accuracy": pytest.approx(0.7), "ci": audit["weak_slices"][0]["ci"]}
    ]
    lo, hi = audit["weak_slices"][0]["ci"]
    assert 0.0 < lo < 0.7 < hi < 1.0
    assert audit["per_slice"] == [
        {
            "slice": "first_half",
            "n": 10,
            "teacher_accuracy": 0.8,
            "student_accuracy": 0.8,
            "inherited_error_rate": 0.1,
        },
        {
            "slice": "second_half",
            "n": 10,
            "teacher_accuracy": 0.7,
            "student_accuracy": 0.8,
            "inherited_error_rate": 0.2,
        },
    ]
    # without a floor, 7/10 against 0.75 overall is noise: not weak
    assert run()["weak_slices"] == []


def test_weak_slice_without_floor_needs_a_significant_shortfall() -> None:
    n = 200
    gold = ["fresh"] * n
    # teacher: right everywhere except half of the last 40 examples (the "hard" slice)
    teacher = ["rotten" if i >= 160 and i % 2 else "fresh" for i in range(n)]
    audit = audit_teacher(
        ids=[f"x{i}" for i in range(n)],
        gold=gold,
        teacher_labels=teacher,
        student_labels=teacher,
        labels=LABELS,
        slices={"easy": np.arange(160), "hard": np.arange(160, 200), "empty": np.arange(0)},
    )
    assert audit["accuracy"] == pytest.approx(0.9)
    assert [w["slice"] for w in audit["weak_slices"]] == ["hard"]
    assert audit["weak_slices"][0]["ci"][1] < 0.9
    assert audit["inherited_share_of_teacher_errors"] == pytest.approx(1.0)
    assert audit["inherited_ids"] == [f"x{i}" for i in range(161, 200, 2)]
    assert audit["per_slice"][2] == {
        "slice": "empty",
        "n": 0,
        "teacher_accuracy": None,
        "student_accuracy": None,
        "inherited_error_rate": None,
    }


def test_no_teacher_errors_and_bad_inputs() -> None:
    audit = audit_teacher(
        ids=["a", "b"],
        gold=["fresh", "rotten"],
        teacher_labels=["fresh", "rotten"],
        student_labels=["rotten", "rotten"],
        labels=LABELS,
    )
    assert audit["accuracy"] == 1.0
    assert audit["inherited_error_rate"] == 0.0
    assert audit["inherited_share_of_teacher_errors"] is None
    with pytest.raises(ValueError, match="student_labels"):
        audit_teacher(ids=["a"], gold=["fresh"], teacher_labels=["fresh"], student_labels=[], labels=LABELS)
    with pytest.raises(ValueError, match="teacher_scores"):
        run(teacher_scores=np.ones((20, 3)))
    with pytest.raises(ValueError, match="mask"):
        run(slices={"bad": np.ones(5, dtype=bool)})
