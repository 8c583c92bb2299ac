"""Evaluation data: loading JSONL / JSON / CSV, fingerprints, and declared slices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.paths import display_path, file_sha256


@dataclass(frozen=True)
class Dataset:
    """Examples in file order.

    ``inputs`` holds one string per example, or a dict of fields when the spec names several
    input fields. ``features`` maps each feature name to a column (``numpy`` object array for
    categorical values, float array for numeric ones). ``records`` are the raw rows.
    """

    path: Path
    sha256: str
    ids: tuple[str, ...]
    inputs: tuple[Any, ...]
    labels: tuple[str, ...] | None
    features: dict[str, np.ndarray] = field(default_factory=dict)
    records: tuple[dict[str, Any], ...] = ()
    #: Generation: the acceptable reference strings of each example (one or more).
    references: tuple[tuple[str, ...], ...] | None = None

    @property
    def has_gold(self) -> bool:
        """Whether the data carries gold labels or references."""
        return self.labels is not None or self.references is not None

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """Each input as one string (several input fields joined by a newline)."""
        return [x if isinstance(x, str) else "\n".join(str(v) for v in x.values()) for x in self.inputs]

    def concat(self, other: Dataset) -> Dataset:
        """These examples then ``other``'s, as one data set (eval rows and traffic rows).

        Its sha256 combines both files' and the path is this one's; features are the ones both
        have; references and labels are kept only when both carry them.
        """
        import hashlib

        digest = hashlib.sha256(f"{self.sha256}+{other.sha256}".encode()).hexdigest()
        feats = {k: np.concatenate([v, other.features[k]]) for k, v in self.features.items()
                 if k in other.features and v.dtype == other.features[k].dtype}
        both = self.labels is not None and other.labels is not None
        both_refs = self.references is not None and other.references is not None
        return Dataset(
            path=self.path, sha256=digest, ids=self.ids + other.ids,
            inputs=self.inputs + other.inputs,
            labels=(self.labels or ()) + (other.labels or ()) if both else None,
            features=feats, records=self.records + other.records,
            references=(self.references or ()) + (other.references or ()) if both_refs else None,
        )

    def subset(self, index: np.ndarray | Sequence[int]) -> Dataset:
        """The examples at ``index``, in that order (same path and sha256)."""
        idx = [int(i) for i in index]
        return Dataset(
            path=self.path,
            sha256=self.sha256,
            ids=tuple(self.ids[i] for i in idx),
            inputs=tuple(self.inputs[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx) if self.labels is not None else None,
            features={k: v[idx] for k, v in self.features.items()},
            records=tuple(self.records[i] for i in idx) if self.records else (),
            references=(tuple(self.references[i] for i in idx)
                        if self.references is not None else None),
        )


# --------------------------------------------------------------------------- loading

def prompt_fields(template: str, *, file: str, field: str) -> tuple[str, ...]:
    """The ``{field}`` names of a prompt template; anything but plain names is a SpecError.

    ``string.Formatter`` parses the template exactly as ``str.format`` would; attribute or
    index access (``{row.x}``, ``{row[0]}``), conversions and format specs are refused, so a
    template can only ever paste a field's text.
    """
    import string

    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SpecError(f"invalid prompt template: {exc}", file=file, field=field) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise SpecError(f"prompt placeholder {{{name}}} is not a plain field name (no "
                            "attribute or index access, no positional {})", file=file, field=field)
        if spec or conversion:
            raise SpecError(f"prompt placeholder {{{name}}} has a conversion or format spec; "
                            "only plain {field} names are allowed", file=file, field=field)
        if name not in names:
            names.append(name)
    return tuple(names)


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a JSONL / JSON / CSV file as (line number, object) pairs.

    For JSON (a list of objects) the "line" is the 1-based position in the list.
    """
    import csv
    import json

    from harness.errors import DataError

    shown = display_path(path)
    if not path.exists():
        raise DataError("data file not found", file=shown)
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        if suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"invalid JSON: {exc.msg}", file=shown,
                                        field=f"line {lineno}") from None
                    if not isinstance(obj, dict):
                        raise DataError("expected a JSON object", file=shown, field=f"line {lineno}")
                    rows.append((lineno, obj))
        elif suffix == ".json":
            try:
                doc = json.loads(path.read_text("utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON at line {exc.lineno}: {exc.msg}", file=shown) from None
            if not isinstance(doc, list):
                raise DataError("expected a JSON list of objects", file=shown)
            for i, obj in enumerate(doc, 1):
                if not isinstance(obj, dict):
                    raise DataError("expected a JSON object", file=shown, field=f"[{i - 1}]")
                rows.append((i, obj))
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                for lineno, obj in enumerate(reader, 2):
                    if None in obj:
                        raise DataError("more values than header columns", file=shown,
                                        field=f"line {lineno}")
                    rows.append((lineno, {k: _csv_value(v) for k, v in obj.items()}))
        else:
            raise DataError(f"unsupported data format {suffix!r}; expected .jsonl, .json or .csv",
                            file=shown)
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: {exc}", file=shown) from None
    return rows


def _csv_value(text: str | None) -> Any:
    if text is None or text == "":
        return None
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _column(values: list[Any]) -> np.ndarray:
    """A feature column: float (NaN for missing) when every present value is a number."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    col = np.empty(len(values), dtype=object)
    col[:] = values
    return col


def _reference(value: Any, ex_id: str, label: str, shown: str, where: str) -> tuple[str, ...]:
    from harness.errors import DataError

    if isinstance(value, str):
        return (value,)
    if (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        return tuple(value)
    raise DataError(f"id {ex_id!r}: reference field {label!r} is {value!r}; expected a string "
                    "or a non-empty list of strings", file=shown, field=where)


def _render(template: str, names: Sequence[str], row: Mapping[str, Any], ex_id: str,
            shown: str, where: str) -> str:
    from harness.errors import DataError

    missing = [f for f in names if row.get(f) is None]
    if missing:
        raise DataError(f"id {ex_id!r}: prompt field {missing[0]!r} is missing", file=shown,
                        field=where)
    return template.format(**{f: row[f] if isinstance(row[f], str) else str(row[f])
                              for f in names})


def load_dataset(spec: Any, labels: Sequence[str] | None = None, *,
                 references: bool = False) -> Dataset:
    """Load the data a :class:`~harness.spec_types.DataSpec` names, checked.

    Every row needs the id and input fields; ids are unique; labels (when the spec names a
    label field and ``labels`` is given) are in the label set; the optional sha256 pin must
    match. With ``references`` (generation) the label field holds a reference string or a list
    of acceptable strings. With a ``prompt`` template each input is the rendered prompt.
    Raises :class:`~harness.errors.DataError` naming the file, line and field.
    """
    from harness.errors import DataError

    path: Path = spec.path
    shown = display_path(path)
    digest = file_sha256(path) if path.exists() else ""
    if spec.sha256 and path.exists() and digest != spec.sha256:
        raise DataError(
            f"sha256 is {digest}, but the suite pins {spec.sha256} (update data.sha256 if the "
            "change is intended)", file=shown)
    rows = read_rows(path)
    if not rows:
        raise DataError("the data set has no examples", file=shown)
    prompt = getattr(spec, "prompt", None)
    prompt_names: tuple[str, ...] = ()
    if prompt is not None:

        suite_file = display_path(spec.source)
        prompt_names = prompt_fields(prompt, file=suite_file, field=f"{spec.field}.prompt")
        first = rows[0][1]
        unknown = [f for f in prompt_names if f not in first]
        if unknown:
            raise SpecError(f"prompt placeholder {{{unknown[0]}}} names no field of "
                            f"{shown} (its fields: {', '.join(sorted(first))})",
                            file=suite_file, field=f"{spec.field}.prompt")
    refs: list[tuple[str, ...]] = []
    ids: list[str] = []
    inputs: list[Any] = []
    gold: list[str] = []
    seen: dict[str, int] = {}
    label_set = set(labels) if labels else None
    for lineno, row in rows:
        where = f"line {lineno}"
        if spec.id not in row or row[spec.id] is None:
            raise DataError(f"missing id field {spec.id!r}", file=shown, field=where)
        ex_id = str(row[spec.id])
        if ex_id in seen:
            raise DataError(f"duplicate id {ex_id!r} (first at line {seen[ex_id]})", file=shown,
                            field=where)
        seen[ex_id] = lineno
        ids.append(ex_id)
        missing = [f for f in spec.input if f not in row or row[f] is None]
        if missing and prompt is None:  # with a prompt, its placeholders are the inputs
            raise DataError(f"id {ex_id!r}: missing input field {missing[0]!r}", file=shown,
                            field=where)
        if prompt is not None:
            inputs.append(_render(prompt, prompt_names, row, ex_id, shown, where))
        elif len(spec.input) == 1:
            inputs.append(row[spec.input[0]] if isinstance(row[spec.input[0]], str)
                          else str(row[spec.input[0]]))
        else:
            inputs.append({f: row[f] for f in spec.input})
        if spec.label and references:
            if spec.label not in row or row[spec.label] is None:
                raise DataError(f"id {ex_id!r}: missing reference field {spec.label!r}",
                                file=shown, field=where)
            refs.append(_reference(row[spec.label], ex_id, spec.label, shown, where))
        elif spec.label:
            if spec.label not in row or row[spec.label] is None:
                raise DataError(f"id {ex_id!r}: missing label field {spec.label!r}", file=shown,
                                field=where)
            value = str(row[spec.label]) if not isinstance(row[spec.label], str) else row[spec.label]
            if label_set is not None and value not in label_set:
                raise DataError(
                    f"id {ex_id!r}: label {value!r} is not in the suite's labels "
                    f"{sorted(label_set)}", file=shown, field=where)
            gold.append(value)
    features = {f: _column([row.get(f) for _, row in rows]) for f in spec.features}
    for f, col in features.items():
        if all(v is None for v in (row.get(f) for _, row in rows)):
            raise DataError(f"feature {f!r} is missing from every row", file=shown,
                            field=f"{spec.field}.features")
        del col
    return Dataset(
        path=path, sha256=digest, ids=tuple(ids), inputs=tuple(inputs),
        labels=tuple(gold) if spec.label and not references else None, features=features,
        records=tuple(row for _, row in rows),
        references=tuple(refs) if spec.label and references else None,
    )


# --------------------------------------------------------------------------- slices

_OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "regex")


def _equal(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``True != 1`` here)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _matches(value: Any, cond: Any) -> bool:
    import re

    if not isinstance(cond, dict):
        return _equal(value, cond)
    for op, arg in cond.items():
        if op == "eq" and not _equal(value, arg):
            return False
        if op == "ne" and _equal(value, arg):
            return False
        if op == "in" and not any(_equal(value, a) for a in arg):
            return False
        if op == "not_in" and any(_equal(value, a) for a in arg):
            return False
        if op in ("lt", "lte", "gt", "gte"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                return False
            if op == "lt" and not value < arg:
                return False
            if op == "lte" and not value <= arg:
                return False
            if op == "gt" and not value > arg:
                return False
            if op == "gte" and not value >= arg:
                return False
        if op == "regex" and not (isinstance(value, str) and re.search(arg, value)):
            return False
    return True


def where_mask(records: Sequence[Mapping[str, Any]], where: Mapping[str, Any]) -> np.ndarray:
    """Boolean mask of the records that meet every condition of ``where``."""
    mask = np.ones(len(records), dtype=bool)
    for field_name, cond in where.items():
        col = np.fromiter((_matches(r.get(field_name), cond) for r in records), dtype=bool,
                          count=len(records))
        mask &= col
    return mask


def build_slices(suite: Any, data: Dataset, *, allow_empty: bool = False) -> dict[str, np.ndarray]:
    """Every declared slice of ``suite`` as name -> example positions (``overall`` first).

    A named slice that matches no example, or a ``by:`` field absent from the data, is a
    :class:`~harness.errors.SpecError` naming the suite file and the slice — unless
    ``allow_empty`` (for the distillation data, where an empty slice is a coverage gap).
    """
    from harness.naming import predicate_name
    from harness.results import Predicate

    shown = display_path(suite.path)
    out: dict[str, np.ndarray] = {"overall": np.arange(len(data))}
    for entry in suite.slices:
        if not isinstance(entry, dict):
            mask = where_mask(data.records, entry.where)
            if not mask.any() and not allow_empty:
                raise SpecError(f"slice {entry.name!r} matches no example of "
                                f"{display_path(data.path)}", file=shown, field=entry.field)
            out[entry.name] = np.flatnonzero(mask)
            continue
        base = where_mask(data.records, entry["where"]) if entry["where"] else np.ones(
            len(data), dtype=bool)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for feature in entry["by"]:
            if not any(feature in r for r in data.records) and not allow_empty:
                raise SpecError(f"by: field {feature!r} is not in the data", file=shown,
                                field=f"{entry['field']}.by")
        for i, r in enumerate(data.records):
            if not base[i]:
                continue
            key = tuple(_hashable(r.get(f)) for f in entry["by"])
            if any(k is None for k in key):
                continue
            groups.setdefault(key, []).append(i)
        if not groups and not allow_empty:
            raise SpecError("by: slices match no example", file=shown, field=entry["field"])
        for key in sorted(groups, key=lambda k: tuple(_order(v) for v in k)):
            preds = [Predicate(f, "eq", v) for f, v in zip(entry["by"], key, strict=True)]
            prefix = _where_prefix(entry["where"])
            name = predicate_name(preds)
            if prefix:
                name = f"{prefix} & {name}"
            out[name] = np.array(groups[key], dtype=int)
    return out


def _order(value: Any) -> tuple[str, Any]:
    """Sort key of a ``by:`` value: ints and floats in one numeric order, each type apart."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    return (type(value).__name__, value)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, sort_keys=True)
    return value


def _where_prefix(where: Mapping[str, Any]) -> str:
    from harness.naming import predicate_name
    from harness.results import Predicate

    preds: list[Predicate] = []
    for field_name, cond in where.items():
        if isinstance(cond, dict):
            preds.extend(Predicate(field_name, op, arg) for op, arg in cond.items())
        else:
            preds.append(Predicate(field_name, "eq", cond))
    return predicate_name(preds)
