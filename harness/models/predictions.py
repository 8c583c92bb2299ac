"""``type: predictions`` — precomputed outputs in a JSONL or Parquet file (an API teacher, a remote model).

A file is read once per process for a given data set (collection's check and the run share the
result) and column-wise (``pyarrow``): every check is made on whole columns. At the first
doubt — a line pyarrow cannot parse, a column of an unexpected type, any breach of the
contract — the file is read again line by line, which names the file, the line (or row) and
the id of the first bad example.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data import (
    Dataset,
    distinct,
    jsonl_values,
    numbers,
    object_column,
    read_rows,
    release_parse_buffers,
    row_word,
)
from harness.errors import DataError
from harness.models.base import Model, ModelFacts, Predictions, Progress
from harness.paths import display_path, file_sha256

#: Scores over the label set must sum to 1 within this tolerance.
SUM_TOLERANCE = 1e-3
#: Bump when the checks of a predictions file change: older validation records no longer count.
VALIDATOR_VERSION = 1
#: Files parsed in this process: (file, its hash, the data set, labels) -> predictions.
_PARSED: dict[tuple[Any, ...], Predictions] = {}
_PARSED_MAX = 4

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
    precomputed = True

    def __init__(self, spec: Any, role: str, cache_dir: Path | None = None):
        super().__init__(spec, role)
        assert spec.local_path is not None
        self.path = spec.local_path
        self._fingerprint: str | None = None
        self._cache_dir = cache_dir

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            import hashlib

            h = hashlib.sha256(b"predictions\0")
            h.update(file_sha256(self.path).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def validate(self, data: Dataset, labels: Sequence[str]) -> None:
        """Read the file and hold it to the contract (it is only a file: reading runs nothing).

        The result is kept for this process, so the run that follows does not read it again.
        A file found valid once leaves a record in the cache, keyed by the file's content, the
        data set's and the labels: collecting again reads no line of it (the run still does).
        """
        record = self._validation_record(data, labels)
        if record is not None and record.exists():
            return
        self.predict(data, labels)
        if record is not None:
            from harness.cache import PredictionCache
            from harness.fileio import atomic_write_text

            try:
                PredictionCache._init_root(record.parent.parent)  # the cache ignores itself
                record.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(record, json.dumps({
                    "file": display_path(self.path), "sha256": file_sha256(self.path),
                    "data_sha256": data.sha256, "n": len(data), "labels": list(labels),
                    "validator": VALIDATOR_VERSION}, indent=2, sort_keys=True) + "\n")
            except OSError:
                pass  # a read-only cache: validate again next time

    def _validation_record(self, data: Dataset, labels: Sequence[str]) -> Path | None:
        """Where the record of this file's validation against ``data`` lives (None: no cache)."""
        if self._cache_dir is None or not self.path.exists():
            return None
        import hashlib

        key = json.dumps(["predictions-valid", VALIDATOR_VERSION, self.fingerprint(),
                          data.sha256, len(data), list(labels)])
        return (Path(self._cache_dir) / "validated"
                / f"{hashlib.sha256(key.encode()).hexdigest()}.json")

    def facts(self) -> ModelFacts:
        meta = self.spec.metadata
        params = meta.get("params")
        size = meta.get("bytes")
        return ModelFacts(params=int(params) if params is not None else None,
                          bytes=int(size) if size is not None else None)

    def predict(self, data: Dataset, labels: Sequence[str],
                progress: Progress | None = None) -> Predictions:
        if not self.path.exists():
            raise DataError("predictions file not found", file=display_path(self.path))
        key = (str(self.path.resolve()), self.fingerprint(), data.sha256, data.ids[:1],
               data.ids[-1:], len(data), tuple(labels))
        pred = _PARSED.get(key)
        if pred is None:
            pred = _read_columns(self.path, data, labels)
            release_parse_buffers()  # the file's table is gone; its buffers go back too
            if pred is None:
                pred = self._read_lines(data, labels)
            while len(_PARSED) >= _PARSED_MAX:
                _PARSED.pop(next(iter(_PARSED)))
            _PARSED[key] = pred
        if progress:
            progress(len(data), len(data))
        return pred

    def _read_lines(self, data: Dataset, labels: Sequence[str]) -> Predictions:
        """The row-by-row reader: every check, the first breach named by line (or row) and id."""
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
        unit = row_word(self.path)
        for lineno, obj in _objects(self.path):
            where = f"{unit} {lineno}"
            if not isinstance(obj, dict) or "id" not in obj:
                raise DataError("expected an object with an 'id'", file=shown, field=where)
            ex_id = str(obj["id"])
            if ex_id in seen:
                raise DataError(f"duplicate id {ex_id!r} (first at {unit} {seen[ex_id]})",
                                file=shown, field=where)
            seen[ex_id] = lineno
            if ex_id not in wanted:
                raise DataError(f"id {ex_id!r} is not in the data set "
                                f"{display_path(data.path)}", file=shown, field=where)
            row = wanted[ex_id]
            if label_set:
                label = obj.get("label")
                if not isinstance(label, str):
                    hint = (" (a classification suite's predictions give `label`; `output` is "
                            "for generation)" if "output" in obj else "")
                    raise DataError(f"id {ex_id!r}: missing label{hint}", file=shown, field=where)
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
                    hint = (" (a generation suite's predictions give `output`; `label` is for "
                            "classification)" if "label" in obj else "")
                    raise DataError(f"id {ex_id!r}: missing output{hint}", file=shown, field=where)
                outputs[row] = out
                _generation_extras(obj, row, extras, f"id {ex_id!r}", shown, where)
        missing = [ex_id for ex_id in data.ids if ex_id not in seen]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise DataError(f"{len(missing)} example id(s) have no prediction: "
                            f"{', '.join(repr(m) for m in missing[:3])}{more}", file=shown)
        if label_set:
            return Predictions(ids=data.ids, labels=tuple(str(x) for x in got_labels),
                               scores=scores if has_scores else None)
        return Predictions(ids=data.ids, outputs=tuple(str(x) for x in outputs),
                           **extras.fields(shown))


def _objects(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank JSONL line; Parquet: (row, row dict)."""
    if path.suffix.lower() == ".parquet":
        yield from read_rows(path)
        return
    yield from jsonl_values(path)


def _read_columns(path: Path, data: Dataset, labels: Sequence[str]) -> Predictions | None:
    """The file read column-wise and checked on whole columns; None at the first doubt.

    None sends the caller to the line-by-line reader, which finds the first bad line and names
    it; so every message stays the same whichever reader saw the file first.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix == ".jsonl":
            import pyarrow.json as pj

            table = pj.read_json(path)
        else:
            return None
    except (pa.ArrowException, UnicodeDecodeError, OSError):
        return None
    release_parse_buffers()
    names = set(table.column_names)
    if "id" not in names or table.num_rows != len(data):
        return None
    ids_col = table.column("id")
    if ids_col.null_count:
        return None
    if not (pa.types.is_integer(ids_col.type) or pa.types.is_string(ids_col.type)
            or pa.types.is_large_string(ids_col.type)):
        return None
    file_ids = ids_col.cast(pa.large_string())
    if file_ids.equals(pa.chunked_array([data.id_array()])):
        # the batch job kept the data's order (the usual case): no id to look up
        order = np.arange(len(data), dtype=np.int64)
    else:
        # Where each line's id sits in the data set: every id known, each exactly once.
        position = pc.index_in(file_ids, value_set=data.id_array())
        if position.null_count:
            return None
        rows = numbers(position, np.int64, -1)
        if np.bincount(rows, minlength=len(data)).max(initial=0) != 1:
            return None  # an id given twice (so another missing): the line reader names it
        order = np.empty(len(data), dtype=np.int64)
        order[rows] = np.arange(len(rows))  # file line of each example, in the data's order

    def strings(name: str) -> np.ndarray | None:
        if name not in names:
            return None
        col = table.column(name)
        if col.null_count or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            return None
        return object_column(col)[order]

    label_set = list(labels)
    if label_set:
        got = strings("label")
        if got is None or not set(distinct(table.column("label"))) <= set(label_set):
            return None
        scores = None
        if "scores" in names:
            scores = _score_columns(table.column("scores"), label_set, order)
            if scores is None:
                return None
        return Predictions(ids=data.ids, labels=tuple(got.tolist()), scores=scores)
    out = strings("output")
    if out is None:
        return None
    extra: dict[str, Any] = {}
    if "usage" in names:
        usage = table.column("usage")
        if not pa.types.is_struct(usage.type):
            return None
        for name in ("input_tokens", "output_tokens"):
            if usage.type.get_field_index(name) < 0:
                continue
            col = pc.struct_field(usage, name)
            if col.null_count == len(col):
                continue
            if col.null_count or not pa.types.is_integer(col.type) or pc.min(col).as_py() < 0:
                return None  # given for some lines only, or not a count: the line reader says so
            extra[name] = numbers(col, np.int64, -1)[order]
    if "finish_reason" in names:
        finish = table.column("finish_reason")
        if finish.null_count == len(finish):
            pass
        elif finish.null_count or not set(distinct(finish)) <= set(FINISH_REASONS):
            return None
        else:
            extra["finish_reasons"] = tuple(object_column(finish)[order].tolist())
    return Predictions(ids=data.ids, outputs=tuple(out.tolist()), **extra)


def _score_columns(col: Any, labels: list[str], order: np.ndarray) -> np.ndarray | None:
    """The (n, n_labels) score matrix of a ``scores`` struct column, held to the contract."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if col.null_count or not pa.types.is_struct(col.type):
        return None
    fields = [col.type.field(i) for i in range(col.type.num_fields)]
    if any(f.name not in labels for f in fields):
        return None
    matrix = np.zeros((len(col), len(labels)))
    for f in fields:
        if not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            return None
        values = pc.struct_field(col, f.name)
        if values.null_count:
            return None  # a label left out scores 0, a null is an error: the line reader decides
        matrix[:, labels.index(f.name)] = numbers(values, np.float64, np.nan)
    if (not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix > 1).any()
            or (np.abs(matrix.sum(axis=1) - 1.0) > SUM_TOLERANCE).any()):
        return None
    return matrix[order]


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
    return PredictionsModel(spec, role, cache_dir=options.cache_dir)
