"""The teacher audit: how good the teacher is, where it is weak, and which of its errors
the student learned.

A distilled student is judged against its teacher, so the teacher's own errors matter: a
slice where the teacher is weak makes "student ≈ teacher" a low bar, a confidently wrong
teacher label is a candidate for a mislabelled gold example (or a teacher blind spot), and
an error the student shares with the teacher was most likely inherited through distillation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.memo import memoized, plain_parts
from harness.outputs import INVALID_LABEL
from harness.stats import wilson_interval

# The audit is a pure function of its arguments: a warm run reads it back (harness.memo).
_MEMO: dict[str, Any] = {"folder": "audit", "modules": ("harness.audit", "harness.stats",
                                                       "harness.textmetrics", "harness.outputs"),
                         "dists": ("numpy", "scipy", "sacrebleu", "rapidfuzz"),
                         "parts": plain_parts}

__all__ = ["audit_teacher", "audit_generation"]


def _index(selection: np.ndarray | Sequence[int] | Sequence[bool], n: int, name: str) -> np.ndarray:
    """Integer positions of a slice given as a boolean mask or an index array."""
    arr = np.asarray(selection)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"slice {name!r}: mask has shape {arr.shape}, expected ({n},)")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.empty(0, dtype=int)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"slice {name!r}: expected a boolean mask or integer indices")
    idx = arr.astype(int).ravel()
    if idx.min() < -n or idx.max() >= n:
        raise ValueError(f"slice {name!r}: index out of range for {n} examples")
    if idx[0] >= 0 and bool((idx[1:] > idx[:-1]).all()):
        return idx  # already sorted and distinct, as the data's slices are: nothing to sort
    return np.unique(idx % n)


def _rate(count: int, n: int) -> float | None:
    return float(count / n) if n else None


# Not memoized: hashing its arguments (four strings per example) costs more than the audit
# (10^6 examples: ~3.5 s of key against ~0.3 s of counting); audit_generation's chrF is not cheap.
def audit_teacher(
    *,
    ids: Sequence[str],
    gold: Sequence[str],
    teacher_labels: Sequence[str],
    student_labels: Sequence[str],
    labels: Sequence[str],
    teacher_scores: np.ndarray | None = None,
    slices: Mapping[str, np.ndarray] | None = None,
    floor: float | None = None,
    confidence: float = 0.9,
    max_ids: int = 20,
    level: float = 0.95,
    teacher_texts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The report's ``teacher_audit`` object for a classification suite.

    - ``accuracy``, ``teacher_error_rate``: the teacher against the gold labels.
    - ``weak_slices``: ``{"slice", "n", "accuracy", "ci"}`` (Wilson interval at ``level``)
      for each slice whose teacher accuracy is below ``floor``; when ``floor`` is None, for
      each slice whose interval lies wholly below the overall accuracy (upper bound under
      it), so noise in a small slice is not called weak. Worst first, then by name.
    - ``suspect_ids``: examples the teacher gets wrong with a top score of at least
      ``confidence`` (``teacher_scores``: one row per example, columns in ``labels`` order),
      most confident first, ties in data order, at most ``max_ids``; ``suspects`` gives
      each one's gold label, teacher label and score; ``n_suspect`` counts them all.
      Invalid teacher answers (:data:`INVALID_LABEL`: an answer that matched no label) are
      suspects too, listed first in data order with ``"invalid": true`` and the answer as the
      model wrote it (``teacher_texts``); ``invalid_ids`` lists the first ``max_ids`` of them
      and ``n_invalid`` counts them.
    - ``inherited_error_rate``: share of all examples where the teacher is wrong and the
      student gives the same wrong label; ``inherited_ids`` the first ``max_ids`` of them
      in data order; ``inherited_share_of_teacher_errors``: of the teacher's errors, the
      share the student copied (None when the teacher makes none).
    - ``per_slice``: ``{"slice", "n", "teacher_accuracy", "student_accuracy",
      "inherited_error_rate"}`` for each slice, in the order given.

    ``slices`` maps a slice name to a boolean mask or an index array over the examples.
    Rates over no examples are None; every number is a plain Python int or float.
    """
    n = len(ids)
    for name, seq in (("gold", gold), ("teacher_labels", teacher_labels), ("student_labels", student_labels)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} ids")
    gold_a = np.asarray(list(gold), dtype=object)
    teacher_a = np.asarray(list(teacher_labels), dtype=object)
    student_a = np.asarray(list(student_labels), dtype=object)
    teacher_ok = teacher_a == gold_a
    student_ok = student_a == gold_a
    inherited = ~teacher_ok & (student_a == teacher_a)

    invalid = np.flatnonzero(teacher_a == INVALID_LABEL)
    suspects, n_suspect = _suspects(ids, gold_a, teacher_a, student_a, labels, invalid,
                                    teacher_ok, teacher_scores, teacher_texts,
                                    confidence=confidence, max_ids=max_ids)
    suspect_ids = [s["id"] for s in suspects]

    out = _summary(ids=ids, teacher_ok=teacher_ok, student_ok=student_ok, inherited=inherited,
                   slices=slices, floor=floor, level=level, max_ids=max_ids)
    out.update({"suspect_ids": suspect_ids, "suspects": suspects, "n_suspect": n_suspect,
                "confidence": float(confidence), "n_invalid": int(len(invalid)),
                "invalid_ids": [str(ids[i]) for i in invalid[:max_ids]]})
    return out



def _suspects(ids: Sequence[str], gold_a: np.ndarray, teacher_a: np.ndarray,
              student_a: np.ndarray, labels: Sequence[str], invalid: np.ndarray,
              teacher_ok: np.ndarray, teacher_scores: np.ndarray | None,
              teacher_texts: Sequence[str] | None, *, confidence: float, max_ids: int,
              ) -> tuple[list[dict[str, Any]], int]:
    """The teacher's suspect outputs (invalid answers first, then confident errors, most
    confident first; at most ``max_ids``) and how many there are in all."""
    n = len(ids)
    suspects: list[dict[str, Any]] = []
    n_suspect = int(len(invalid))
    for i in invalid[:max_ids]:
        suspects.append({"id": str(ids[i]), "gold": gold_a[i], "teacher": teacher_a[i],
                         "student": student_a[i], "score": None, "invalid": True,
                         **({"answer": str(teacher_texts[i])} if teacher_texts is not None
                            else {})})
    if teacher_scores is None:
        return suspects, n_suspect
    scores = np.asarray(teacher_scores, dtype=float)
    if scores.shape != (n, len(labels)):
        raise ValueError(f"teacher_scores has shape {scores.shape}, expected ({n}, {len(labels)})")
    top = np.full(n, -np.inf)
    finite = np.isfinite(scores).all(axis=1)
    if n:
        top[finite] = scores[finite].max(axis=1)
    wrong_sure = np.flatnonzero(~teacher_ok & (top >= confidence) & (teacher_a != INVALID_LABEL))
    n_suspect += int(len(wrong_sure))
    order = wrong_sure[np.lexsort((wrong_sure, -top[wrong_sure]))][:max_ids - len(suspects)]
    for i in order:
        suspects.append({"id": str(ids[i]), "gold": gold_a[i], "teacher": teacher_a[i],
                         "student": student_a[i], "score": float(top[i])})
    return suspects, n_suspect

@memoized("audit.audit_generation", 1, **_MEMO)
def audit_generation(
    *,
    ids: Sequence[str],
    references: Sequence[Sequence[str]],
    teacher_outputs: Sequence[str],
    student_outputs: Sequence[str],
    slices: Mapping[str, np.ndarray] | None = None,
    floor: float | None = None,
    max_ids: int = 20,
    level: float = 0.95,
) -> dict[str, Any]:
    """The report's ``teacher_audit`` object for a generation suite.

    The teacher is right on an example when its output equals one of the references
    (``exact_match``, whitespace-stripped). ``suspect_ids`` are the outputs where the teacher
    disagrees with every reference, the farthest from its closest reference (lowest chrF)
    first: each is a teacher blind spot or a wrong reference. An error is *inherited* when the
    student's output equals the teacher's wrong one. Other fields as :func:`audit_teacher`.
    """
    from harness import textmetrics

    n = len(ids)
    for name, seq in (("references", references), ("teacher_outputs", teacher_outputs),
                      ("student_outputs", student_outputs)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} ids")
    teacher_ok = textmetrics.exact_match(teacher_outputs, references) > 0
    student_ok = textmetrics.exact_match(student_outputs, references) > 0
    same = np.array([s.strip() == t.strip() for s, t in zip(student_outputs, teacher_outputs,
                                                              strict=True)], dtype=bool)
    inherited = ~teacher_ok & same
    wrong = np.flatnonzero(~teacher_ok)
    suspects: list[dict[str, Any]] = []
    if len(wrong):
        closeness = textmetrics.chrf([teacher_outputs[int(i)] for i in wrong],
                                     [references[int(i)] for i in wrong])
        order = wrong[np.lexsort((wrong, closeness))][:max_ids]
        rank = dict(zip(wrong.tolist(), closeness.tolist(), strict=True))
        for j in order:
            i = int(j)
            suspects.append({"id": str(ids[i]), "references": list(references[i]),
                             "teacher": teacher_outputs[i], "student": student_outputs[i],
                             "chrf": float(rank[i])})
    out = _summary(ids=ids, teacher_ok=teacher_ok, student_ok=student_ok, inherited=inherited,
                   slices=slices, floor=floor, level=level, max_ids=max_ids)
    out.update({"suspect_ids": [s["id"] for s in suspects], "suspects": suspects,
                "n_suspect": int(len(wrong)), "metric": "exact_match"})
    return out


def _summary(*, ids: Sequence[str], teacher_ok: np.ndarray, student_ok: np.ndarray,
             inherited: np.ndarray, slices: Mapping[str, np.ndarray] | None,
             floor: float | None, level: float, max_ids: int) -> dict[str, Any]:
    """Accuracy, weak slices, inherited errors and the per-slice table of either task."""
    n = len(ids)
    n_teacher_ok = int(teacher_ok.sum())
    n_teacher_err = n - n_teacher_ok
    n_inherited = int(inherited.sum())
    accuracy = _rate(n_teacher_ok, n)
    weak: list[dict[str, Any]] = []
    per_slice: list[dict[str, Any]] = []
    for name, selection in (slices or {}).items():
        idx = _index(selection, n, name)
        m = len(idx)
        t_ok = int(teacher_ok[idx].sum())
        per_slice.append(
            {
                "slice": name,
                "n": m,
                "teacher_accuracy": _rate(t_ok, m),
                "student_accuracy": _rate(int(student_ok[idx].sum()), m),
                "inherited_error_rate": _rate(int(inherited[idx].sum()), m),
            }
        )
        if m == 0 or accuracy is None:
            continue
        slice_acc = t_ok / m
        lo, hi = wilson_interval(t_ok, m, level)
        is_weak = slice_acc < floor if floor is not None else hi < accuracy
        if is_weak:
            weak.append({"slice": name, "n": m, "accuracy": float(slice_acc), "ci": [lo, hi]})
    weak.sort(key=lambda w: (w["accuracy"], w["slice"]))

    return {
        "accuracy": accuracy,
        "n": n,
        "floor": None if floor is None else float(floor),
        "weak_slices": weak,
        "teacher_error_rate": _rate(n_teacher_err, n),
        "inherited_error_rate": _rate(n_inherited, n),
        "inherited_ids": [str(ids[i]) for i in np.flatnonzero(inherited)[:max_ids]],
        "inherited_share_of_teacher_errors": _rate(n_inherited, n_teacher_err),
        "per_slice": per_slice,
    }
