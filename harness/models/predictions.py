"""``type: predictions`` — precomputed outputs in a JSONL file (an API teacher, a remote model)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data import Dataset, file_sha256
from harness.errors import DataError
from harness.models.base import Model, ModelFacts, Predictions, Progress
from harness.paths import display_path

#: Scores over the label set must sum to 1 within this tolerance.
SUM_TOLERANCE = 1e-3

if TYPE_CHECKING:
    from harness.options import Options
    from harness.spec_types import ModelSpec


class PredictionsModel(Model):
    """Reads, checks and aligns a predictions file to the data set's example order.

    Every id of the data set appears exactly once; labels are in the suite's label set; scores
    (optional) are finite probabilities over exactly the suite's labels summing to 1. Any
    breach is a :class:`~harness.errors.DataError` naming the file, line and id.
    """

    timeable = False

    def __init__(self, spec: Any, role: str):
        super().__init__(spec, role)
        assert spec.local_path is not None
        self.path = spec.local_path
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import hashlib

            h = hashlib.sha256(b"predictions\0")
            h.update(file_sha256(self.path).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def validate(self, data: Dataset, labels: Sequence[str]) -> None:
        """Read the file and hold it to the contract (it is only a file: reading runs nothing)."""
        self.predict(data, labels)

    def facts(self) -> ModelFacts:
        meta = self.spec.metadata
        params = meta.get("params")
        size = meta.get("bytes")
        return ModelFacts(params=int(params) if params is not None else None,
                          bytes=int(size) if size is not None else None)

    def predict(self, data: Dataset, labels: Sequence[str],
                progress: Progress | None = None) -> Predictions:
        shown = display_path(self.path)
        wanted = {ex_id: i for i, ex_id in enumerate(data.ids)}
        label_set = list(labels)
        label_index = {lab: j for j, lab in enumerate(label_set)}
        got_labels: list[str | None] = [None] * len(data)
        outputs: list[str | None] = [None] * len(data)
        scores = np.full((len(data), len(label_set)), np.nan) if label_set else None
        has_scores: bool | None = None
        extras = _Extras(len(data))
        seen: dict[str, int] = {}
        if not self.path.exists():
            raise DataError("predictions file not found", file=shown)
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"line {lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"invalid JSON: {exc.msg}", file=shown, field=where) from None
                if not isinstance(obj, dict) or "id" not in obj:
                    raise DataError("expected an object with an 'id'", file=shown, field=where)
                ex_id = str(obj["id"])
                if ex_id in seen:
                    raise DataError(f"duplicate id {ex_id!r} (first at line {seen[ex_id]})",
                                    file=shown, field=where)
                seen[ex_id] = lineno
                if ex_id not in wanted:
                    raise DataError(f"id {ex_id!r} is not in the data set "
                                    f"{display_path(data.path)}", file=shown, field=where)
                row = wanted[ex_id]
                if label_set:
                    label = obj.get("label")
                    if not isinstance(label, str):
                        raise DataError(f"id {ex_id!r}: missing label", file=shown, field=where)
                    if label not in label_index:
                        raise DataError(f"id {ex_id!r}: label {label!r} is not one of "
                                        f"{', '.join(label_set)}", file=shown, field=where)
                    got_labels[row] = label
                    row_scores = obj.get("scores")
                    if has_scores is None:
                        has_scores = row_scores is not None
                    if (row_scores is not None) != has_scores:
                        raise DataError(f"id {ex_id!r}: scores must be given for every line or "
                                        "none", file=shown, field=where)
                    if row_scores is not None:
                        assert scores is not None
                        try:
                            scores[row] = score_row(row_scores, label_set)
                        except ValueError as exc:
                            raise DataError(f"id {ex_id!r}: {exc}", file=shown,
                                            field=where) from None
                else:
                    out = obj.get("output")
                    if not isinstance(out, str):
                        raise DataError(f"id {ex_id!r}: missing output", file=shown, field=where)
                    outputs[row] = out
                    _generation_extras(obj, row, extras, f"id {ex_id!r}", shown, where)
        missing = [ex_id for ex_id in data.ids if ex_id not in seen]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise DataError(f"{len(missing)} example id(s) have no prediction: "
                            f"{', '.join(repr(m) for m in missing[:3])}{more}", file=shown)
        if progress:
            progress(len(data), len(data))
        if label_set:
            return Predictions(ids=data.ids, labels=tuple(str(x) for x in got_labels),
                               scores=scores if has_scores else None)
        return Predictions(ids=data.ids, outputs=tuple(str(x) for x in outputs),
                           **extras.fields(shown))


class _Extras:
    """Optional per-example ``usage`` and ``finish_reason`` of generation predictions."""

    def __init__(self, n: int):
        self.input_tokens = np.full(n, -1, dtype=np.int64)
        self.output_tokens = np.full(n, -1, dtype=np.int64)
        self.finish: list[str | None] = [None] * n

    def fields(self, shown: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # All or nothing: totals over some of the examples would be silently wrong.
        for name, arr in (("input_tokens", self.input_tokens), ("output_tokens", self.output_tokens)):
            given = arr >= 0
            if given.all():
                out[name] = arr
            elif given.any():
                raise DataError(f"usage.{name} is given for {int(given.sum())} of {len(arr)} "
                                "examples; give it for every line or none", file=shown)
        given_f = [f is not None for f in self.finish]
        if all(given_f):
            out["finish_reasons"] = tuple(str(f) for f in self.finish)
        elif any(given_f):
            raise DataError(f"finish_reason is given for {sum(given_f)} of {len(given_f)} "
                            "examples; give it for every line or none", file=shown)
        return out


FINISH_REASONS = ("stop", "length")


def _generation_extras(obj: dict[str, Any], row: int, extras: _Extras, who: str, shown: str,
                       where: str) -> None:
    usage = obj.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise DataError(f"{who}: usage must be an object with input_tokens / output_tokens",
                            file=shown, field=f"{where}: usage")
        for name in ("input_tokens", "output_tokens"):
            v = usage.get(name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise DataError(f"{who}: usage.{name} is {v!r}, expected a non-negative integer",
                                file=shown, field=f"{where}: usage.{name}")
            getattr(extras, name)[row] = v
    finish = obj.get("finish_reason")
    if finish is not None:
        if finish not in FINISH_REASONS:
            raise DataError(f"{who}: finish_reason {finish!r} is not one of "
                            f"{', '.join(FINISH_REASONS)}", file=shown,
                            field=f"{where}: finish_reason")
        extras.finish[row] = finish


def score_row(raw: Any, labels: Sequence[str]) -> np.ndarray:
    """One row of probabilities over ``labels`` (the suite's order), held to the contract.

    ``raw`` maps label -> probability; every value is a finite number in [0, 1], no label is
    unknown, and the row sums to 1 (within :data:`SUM_TOLERANCE`). A label not named scores 0.
    Raises ValueError saying what is wrong.
    """
    if not isinstance(raw, dict):
        raise ValueError("scores must map label -> probability")
    unknown = sorted(set(raw) - set(labels))
    if unknown:
        raise ValueError(f"score for unknown label {unknown[0]!r}")
    row = np.zeros(len(labels))
    for j, lab in enumerate(labels):
        v = raw.get(lab, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"score for {lab!r} is {v!r}, expected a finite number")
        if v < 0 or v > 1:
            raise ValueError(f"score for {lab!r} is {v}, outside [0, 1]")
        row[j] = float(v)
    if abs(row.sum() - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"scores sum to {row.sum():.6g}, expected 1")
    return row


def build(spec: ModelSpec, role: str, options: Options) -> Model:
    """The ``type: predictions`` factory."""
    return PredictionsModel(spec, role)
