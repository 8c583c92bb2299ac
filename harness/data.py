"""Evaluation data: loading JSONL / JSON / CSV / Parquet, fingerprints, and declared slices.

Files are read once, into columns (``pyarrow``): ids, inputs, labels and features come out of
the columns, and slices are computed on them (numpy). A file that the columnar reader cannot
take exactly as the row-by-row reader would (a malformed line, a column whose values change
type, a date that pyarrow would turn into a timestamp) and every file that breaks the contract
go through the row-by-row reader, whose messages name the file, the line (or row) and the id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
    (a sequence that compares equal to the tuple; a file's text column becomes Python strings
    only when something reads them all).
    input fields. ``features`` maps each feature name to a column (``numpy`` object array for
    categorical values, float array for numeric ones). ``records`` are the raw rows.
    """

    path: Path
    sha256: str
    ids: tuple[str, ...]
    inputs: Sequence[Any]
    labels: tuple[str, ...] | None
    features: dict[str, np.ndarray] = field(default_factory=dict)
    records: Sequence[dict[str, Any]] = ()
    #: Generation: the acceptable reference strings of each example (one or more).
    references: tuple[tuple[str, ...], ...] | None = None
    #: The file's columns (a ``pyarrow.Table``) when it was read column-wise.
    table: Any = field(default=None, repr=False, compare=False)
    #: The ids as a pyarrow ``large_string`` array when the file's id column was one already.
    id_column: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.table is not None and not self.records:
            object.__setattr__(self, "records", _Rows(self.table))

    def id_array(self) -> Any:
        """The ids as a pyarrow ``large_string`` array, built once per data set."""
        cached = self.__dict__.get("_id_array", self.id_column)
        if cached is None:
            cached = string_array(self.ids)
            object.__setattr__(self, "_id_array", cached)
        return cached

    def column(self, name: str) -> np.ndarray | None:
        """Every example's raw value of field ``name`` (object array; None where absent).

        None when no example has the field.
        """
        if self.table is not None:
            if name not in self.table.column_names:
                return None
            return object_column(self.table.column(name))
        if not any(name in r for r in self.records):
            return None
        col = np.empty(len(self.records), dtype=object)
        col[:] = [r.get(name) for r in self.records]
        return col

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
        table = None
        if self.table is not None and other.table is not None:
            import pyarrow as pa

            try:
                table = pa.concat_tables([self.table, other.table], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                table = None
        return Dataset(
            path=self.path, sha256=digest, ids=self.ids + other.ids,
            inputs=tuple(self.inputs) + tuple(other.inputs),
            labels=(self.labels or ()) + (other.labels or ()) if both else None,
            features=feats,
            records=() if table is not None else tuple(self.records) + tuple(other.records),
            references=(self.references or ()) + (other.references or ()) if both_refs else None,
            table=table,
        )

    def subset(self, index: np.ndarray | Sequence[int]) -> Dataset:
        """The examples at ``index``, in that order (same path and sha256)."""
        idx = [int(i) for i in index]
        table = None
        if self.table is not None:
            import pyarrow as pa

            positions = np.asarray(idx, dtype=np.int64)  # as a buffer: pa.array imports pandas
            table = self.table.take(pa.Array.from_buffers(pa.int64(), len(positions),
                                                          [None, pa.py_buffer(positions)]))
        return Dataset(
            path=self.path,
            sha256=self.sha256,
            ids=tuple(self.ids[i] for i in idx),
            inputs=(self.inputs.take(idx) if isinstance(self.inputs, Texts)
                    else tuple(self.inputs[i] for i in idx)),
            labels=tuple(self.labels[i] for i in idx) if self.labels is not None else None,
            features={k: v[idx] for k, v in self.features.items()},
            records=(tuple(self.records[i] for i in idx) if self.records and table is None
                     else ()),
            references=(tuple(self.references[i] for i in idx)
                        if self.references is not None else None),
            table=table,
        )


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


class Texts(Sequence[str]):
    """A file's string column (no nulls) as a sequence of Python strings, made when asked.

    One value reads one cell; iterating (or comparing) makes the tuple once. Equal to the
    tuple of its values, and ``+`` gives a tuple, so it stands where a tuple of inputs did.
    """

    def __init__(self, column: Any):
        self.column = column
        self._values: tuple[str, ...] | None = None

    def values(self) -> tuple[str, ...]:
        """Every value, as a tuple (built once)."""
        if self._values is None:
            self._values = tuple(self.column.to_pylist())
        return self._values

    def take(self, index: Sequence[int]) -> Texts:
        """The values at ``index``, in that order."""
        import pyarrow as pa

        positions = np.asarray(index, dtype=np.int64)  # as a buffer: pa.array imports pandas
        return Texts(self.column.take(pa.Array.from_buffers(
            pa.int64(), len(positions), [None, pa.py_buffer(positions)])))

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice) or self._values is not None:
            return self.values()[i]
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError("index out of range")
        return self.column[i % n].as_py()

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (tuple, Texts)):
            return self.values() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.values())

    def __add__(self, other: Any) -> tuple[Any, ...]:
        return self.values() + tuple(other)

    def __radd__(self, other: Any) -> tuple[Any, ...]:
        return tuple(other) + self.values()

    def __repr__(self) -> str:
        return f"Texts({len(self)} values)"


class _Rows(Sequence[dict[str, Any]]):
    """The rows of a ``pyarrow.Table`` as dicts, built when asked (a few thousand at a time)."""

    _CHUNK = 4096

    def __init__(self, table: Any):
        self._table = table

    def __len__(self) -> int:
        return int(self._table.num_rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return _rows_of(self._table.slice(i, 1))[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), self._CHUNK):
            yield from _rows_of(self._table.slice(start, self._CHUNK))


def _rows_of(table: Any) -> list[dict[str, Any]]:
    """Rows as dicts without the keys a row did not have (pyarrow's nulls of absent fields)."""
    return [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]


def numbers(values: Any, dtype: Any, fill: Any) -> np.ndarray:
    """A numeric pyarrow array or column as a numpy array (nulls become ``fill``).

    Read from the values buffer: pyarrow's own ``to_numpy`` imports pandas (a second or more
    on a loaded machine), which a warm run cannot afford.
    """
    import pyarrow as pa

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = arr.cast(pa.from_numpy_dtype(np.dtype(dtype)))
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=dtype)
    item = np.dtype(dtype).itemsize
    out = np.frombuffer(arr.buffers()[1], dtype=dtype, count=n, offset=arr.offset * item).copy()
    if arr.null_count:
        bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
        valid = np.unpackbits(bits, bitorder="little")[arr.offset:arr.offset + n].astype(bool)
        out[~valid] = fill
    return out


def string_array(values: Sequence[str]) -> Any:
    """Python strings as a pyarrow ``large_string`` array, built from buffers (not ``pa.array``,
    which imports pandas)."""
    import pyarrow as pa

    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
              out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def distinct(chunked: Any) -> list[Any]:
    """The distinct values of a pyarrow column (no ``pa.array`` call: that imports pandas)."""
    return list(chunked.unique().to_pylist())


_SAMPLE = 4096


def object_column(chunked: Any) -> np.ndarray:
    """A pyarrow column as a numpy object array of Python values (None for null).

    A string column with few distinct values (a category) holds one str object per value,
    not one per row: 10^6 rows of ``lang`` cost 8 MB of pointers, not 60 MB of strings.
    """
    import pyarrow as pa

    col = np.empty(len(chunked), dtype=object)
    t = chunked.type
    # a few thousand rows tell a category from ids or free text, which are not worth encoding
    if ((pa.types.is_string(t) or pa.types.is_large_string(t)) and len(chunked) > 1000
            and len(chunked.slice(0, _SAMPLE).unique()) * 4 < min(len(chunked), _SAMPLE)):
        enc = chunked.combine_chunks().dictionary_encode()
        if len(enc.dictionary) * 4 < len(chunked):
            values = np.empty(len(enc.dictionary) + 1, dtype=object)
            values[:-1] = enc.dictionary.to_pylist()
            values[-1] = None
            codes = numbers(enc.indices, np.int64, -1)
            col[:] = values[codes]
            return col
    col[:] = chunked.to_pylist()
    return col


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
    """The rows of a JSONL / JSON / CSV / Parquet file as (line number, object) pairs.

    For JSON (a list of objects) the "line" is the 1-based position in the list; for Parquet,
    the 1-based row.
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
            for lineno, obj in jsonl_values(path):
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
        elif suffix == ".parquet":
            table = read_parquet(path)
            rows = list(enumerate(_rows_of(table), 1))
        else:
            raise DataError(f"unsupported data format {suffix!r}; expected .jsonl, .json, .csv "
                            "or .parquet", file=shown)
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: {exc}", file=shown) from None
    return rows


def jsonl_values(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank line of a JSONL file.

    A line that is not JSON is a DataError naming the file and the line.
    """
    import json

    from harness.errors import DataError

    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=display_path(path),
                                field=f"line {lineno}") from None


def row_word(path: Path) -> str:
    """How a location in ``path`` is named in messages: ``row`` (Parquet) or ``line``."""
    return "row" if path.suffix.lower() == ".parquet" else "line"


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> Any:
    """A Parquet file as a ``pyarrow.Table``; a file pyarrow cannot read is a DataError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.errors import DataError

    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", file=display_path(path)) from None


def release_parse_buffers() -> None:
    """Give the parser's freed buffers back to the system: pyarrow's allocator keeps them (the
    JSON reader of a 150 MB file leaves ~130 MB that no table uses), and every later step's
    memory would come on top of them."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


#: Column types the columnar reader hands on as is; anything else (timestamps pyarrow inferred
#: from strings, nested objects) goes through the row-by-row reader, which keeps JSON's types.
def _plain_type(t: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _plain_type(t.value_type) and not pa.types.is_list(t.value_type)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
                or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t))


def read_table(path: Path) -> Any | None:
    """``path``'s columns as a ``pyarrow.Table``, or None where only the row reader can tell.

    Parquet is always read here. JSONL is read by ``pyarrow.json`` when every line parses and
    every column keeps one plain type (strings, numbers, booleans, lists of those); otherwise
    (and for CSV and JSON lists) None: the caller reads the rows one by one, which gives the
    exact message for a bad line.
    """
    import pyarrow as pa

    suffix = path.suffix.lower()
    if not path.exists():
        return None
    if suffix == ".parquet":
        return read_parquet(path)
    if suffix != ".jsonl":
        return None
    import pyarrow.json as pj

    try:
        table = pj.read_json(path)
    except (pa.ArrowException, UnicodeDecodeError, OSError):
        return None
    release_parse_buffers()
    if not all(_plain_type(f.type) for f in table.schema):
        return None
    return table


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
    table = read_table(path)
    if table is not None and table.num_rows:
        fast = _from_table(table, spec, labels, references, digest)
        if fast is not None:
            return fast
    return _from_rows(read_rows(path), spec, labels, references, digest)


def _from_rows(rows: list[tuple[int, dict[str, Any]]], spec: Any,
               labels: Sequence[str] | None, references: bool, digest: str) -> Dataset:
    """The row-by-row loader: every check, with the message naming the line (or row) and id."""
    from harness.errors import DataError

    path: Path = spec.path
    shown = display_path(path)
    unit = row_word(path)
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
        where = f"{unit} {lineno}"
        if spec.id not in row or row[spec.id] is None:
            raise DataError(f"missing id field {spec.id!r}", file=shown, field=where)
        ex_id = str(row[spec.id])
        if ex_id in seen:
            raise DataError(f"duplicate id {ex_id!r} (first at {unit} {seen[ex_id]})",
                            file=shown, field=where)
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


def _from_table(table: Any, spec: Any, labels: Sequence[str] | None, references: bool,
                digest: str) -> Dataset | None:
    """The columnar loader: the same Dataset as :func:`_from_rows`, or None at the first doubt.

    Every check is made on whole columns; when one fails (a missing id, a duplicate, a label
    outside the set…) this returns None and the row-by-row loader finds the row and says so.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    prompt = getattr(spec, "prompt", None)
    if prompt is not None:
        return None  # prompts are rendered row by row (generation suites are small)

    def strings(name: str) -> list[str] | None:
        """The column as str values, as the row loader would make them; None if it would not."""
        if name not in names:
            return None
        col = table.column(name)
        if col.null_count:
            return None
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return object_column(col).tolist()  # labels: one str object per label, shared
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return [str(v) for v in col.to_pylist()]
        return None  # a float column may hold what JSON wrote as an int: the row loader decides

    ids = strings(spec.id)
    if ids is None:
        return None
    id_column = None
    if pa.types.is_string(table.column(spec.id).type) or pa.types.is_large_string(
            table.column(spec.id).type):
        id_column = table.column(spec.id).combine_chunks().cast(pa.large_string())
        distinct_ids = len(id_column.unique())  # pc.count_distinct is slower here
        release_parse_buffers()  # the hash table of a million ids
        if distinct_ids != len(ids):
            return None
    elif len(set(ids)) != len(ids):
        return None
    inputs: Sequence[Any]
    if len(spec.input) == 1 and spec.input[0] in names and not table.column(spec.input[0]).null_count \
            and _is_text(table.column(spec.input[0]).type):
        inputs = Texts(table.column(spec.input[0]))
    elif len(spec.input) == 1:
        one = strings(spec.input[0])
        if one is None:
            return None
        inputs = one
    else:
        cols = []
        for f in spec.input:
            if f not in names or table.column(f).null_count:
                return None
            cols.append(table.column(f).to_pylist())
        inputs = [dict(zip(spec.input, vals, strict=True)) for vals in zip(*cols, strict=True)]
    gold: list[str] | None = None
    refs: list[tuple[str, ...]] | None = None
    if spec.label and references:
        if spec.label not in names:
            return None
        col = table.column(spec.label)
        t = col.type
        if col.null_count:
            return None
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            refs = [(v,) for v in col.to_pylist()]
        elif ((pa.types.is_list(t) or pa.types.is_large_list(t))
              and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))):
            if pc.min(pc.list_value_length(col)).as_py() == 0 or pc.list_flatten(col).null_count:
                return None
            refs = [tuple(v) for v in col.to_pylist()]
        else:
            return None
    elif spec.label:
        gold = strings(spec.label)
        if gold is None:
            return None
        if labels and not set(distinct(table.column(spec.label))) <= set(labels):
            return None
    features: dict[str, np.ndarray] = {}
    for f in spec.features:
        if f not in names or table.column(f).null_count == table.num_rows:
            return None
        features[f] = _feature_column(table.column(f))
    return Dataset(
        path=spec.path, sha256=digest, ids=tuple(ids),
        inputs=inputs if isinstance(inputs, Texts) else tuple(inputs),
        labels=tuple(gold) if gold is not None else None, features=features,
        references=tuple(refs) if refs is not None else None, table=table,
        id_column=id_column,
    )


def _feature_column(chunked: Any) -> np.ndarray:
    """A feature column: float (NaN for missing) when the values are numbers (as ``_column``)."""
    import pyarrow as pa

    t = chunked.type
    if (pa.types.is_integer(t) or pa.types.is_floating(t)) and not pa.types.is_boolean(t):
        return numbers(chunked, np.float64, np.nan)
    return object_column(chunked)


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


def where_mask(records: Sequence[Mapping[str, Any]] | Dataset,
               where: Mapping[str, Any]) -> np.ndarray:
    """Boolean mask of the records (or a data set's examples) that meet every condition of ``where``."""
    n = len(records)
    mask = np.ones(n, dtype=bool)
    for field_name, cond in where.items():
        codes, uniques = _factorize(_values(records, field_name), n)
        ok = np.array([_matches(u, cond) for u in uniques] + [_matches(None, cond)], dtype=bool)
        mask &= ok[codes]  # code -1 (absent) reads the last entry: the condition on None
    return mask


def _values(records: Sequence[Mapping[str, Any]] | Dataset, name: str) -> Any:
    """The raw values of field ``name``: a pyarrow column, an object array, or None (absent)."""
    if isinstance(records, Dataset):
        if records.table is not None:
            return (records.table.column(name) if name in records.table.column_names else None)
        records = records.records
    if not any(name in r for r in records):
        return None
    col = np.empty(len(records), dtype=object)
    col[:] = [r.get(name) for r in records]
    return col


def _factorize(values: Any, n: int) -> tuple[np.ndarray, list[Any]]:
    """(codes, distinct values): ``values[i] == uniques[codes[i]]``; code -1 where None.

    Equal values of different types stay apart (``True`` is not ``1``), as in :func:`_matches`.
    """
    if values is None:
        return np.full(n, -1, dtype=np.int64), []
    if not isinstance(values, np.ndarray):  # a pyarrow column: typed, so C-speed encoding
        import pyarrow as pa

        t = values.type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_null(t)):
            enc = values.combine_chunks().dictionary_encode() if values.num_chunks != 1 else (
                values.chunk(0).dictionary_encode())
            codes = numbers(enc.indices, np.int64, -1).astype(np.int64)
            return codes, enc.dictionary.to_pylist()
        values = object_column(values)
    index: dict[Any, int] = {}
    uniques: list[Any] = []
    codes = np.empty(n, dtype=np.int64)
    for i, v in enumerate(values):
        if v is None:
            codes[i] = -1
            continue
        key = (type(v), _hashable(v))
        code = index.get(key)
        if code is None:
            code = index[key] = len(uniques)
            uniques.append(v)
        codes[i] = code
    return codes, uniques


def build_slices(suite: Any, data: Dataset, *, allow_empty: bool = False,
                 drop_small: bool = True) -> dict[str, np.ndarray]:
    """Every declared slice of ``suite`` as name -> example positions (``overall`` first).

    A named slice that matches no example, or a ``by:`` field absent from the data, is a
    :class:`~harness.errors.SpecError` naming the suite file and the slice — unless
    ``allow_empty`` (for the distillation data, where an empty slice is a coverage gap).
    A ``by:`` value with fewer examples than its entry's ``min_support`` makes no slice, unless
    not ``drop_small`` (the distillation data, whose slices are compared with the eval data's).
    """
    from harness.naming import predicate_name
    from harness.results import Predicate

    shown = display_path(suite.path)
    n = len(data)
    out: dict[str, np.ndarray] = {"overall": np.arange(n)}
    for entry in suite.slices:
        by = _by_entry(entry)
        if by is None:
            mask = where_mask(data, entry.where)
            if not mask.any() and not allow_empty:
                raise SpecError(f"slice {entry.name!r} matches no example of "
                                f"{display_path(data.path)}", file=shown, field=entry.field)
            out[entry.name] = np.flatnonzero(mask)
            continue
        by_fields, where, field_path = by
        base = where_mask(data, where) if where else np.ones(n, dtype=bool)
        factors = []
        for feature in by_fields:
            values = _values(data, feature)
            if values is None and not allow_empty:
                raise SpecError(f"by: field {feature!r} is not in the data", file=shown,
                                field=f"{field_path}.by")
            factors.append(_factorize(values, n))
        keep = base.copy()
        for codes, _ in factors:
            keep &= codes >= 0
        rows = np.flatnonzero(keep)
        if not len(rows) and not allow_empty:
            raise SpecError("by: slices match no example", file=shown, field=field_path)
        # One combined code per example, then its groups (rows stay in file order in each).
        combined = np.zeros(len(rows), dtype=np.int64)
        for codes, uniques in factors:
            combined = combined * max(len(uniques), 1) + codes[rows]
        group_codes, inverse = _groups(combined)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(group_codes) + 1))
        groups: dict[tuple[Any, ...], np.ndarray] = {}
        for g, code in enumerate(group_codes):
            parts: list[Any] = []
            rest = int(code)
            for _codes, uniques in reversed(factors):
                size = max(len(uniques), 1)
                parts.append(_hashable(uniques[rest % size]))
                rest //= size
            members = rows[order[bounds[g]:bounds[g + 1]]]
            k = tuple(reversed(parts))
            # Values that compare equal (2 and 2.0) are one slice, as one dict key made them.
            groups[k] = np.sort(np.concatenate([groups[k], members])) if k in groups else members
        for key in sorted(groups, key=lambda k: tuple(_order(v) for v in k)):
            preds = [Predicate(f, "eq", v) for f, v in zip(by_fields, key, strict=True)]
            prefix = _where_prefix(where)
            name = predicate_name(preds)
            if prefix:
                name = f"{prefix} & {name}"
            if drop_small and len(groups[key]) < _min_support(entry):
                continue
            out[name] = np.asarray(groups[key], dtype=int)
    return out


def _groups(combined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(combined, return_inverse=True)`` of small non-negative codes by counting
    (no sort of a million rows); the inverse in the smallest integer type that holds it, so
    that a stable argsort of it is a radix sort."""
    if not len(combined) or combined.max() >= 4 * len(combined) + 1024:
        return np.unique(combined, return_inverse=True)
    present = np.bincount(combined) > 0
    group_codes = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    inverse = rank[combined]
    small = np.uint16 if len(group_codes) <= 1 << 16 else np.intp
    return group_codes, inverse.astype(small)


def _min_support(entry: Any) -> int:
    """A ``by:`` entry's ``min_support`` (a SliceSpec or its mapping); 0 when it sets none."""
    value = entry.get("min_support") if isinstance(entry, Mapping) else entry.min_support
    return int(value or 0)


def _by_entry(entry: Any) -> tuple[tuple[str, ...], Mapping[str, Any], str] | None:
    """(by fields, where, field path) of a ``by:`` entry (a SliceSpec or its mapping), else None."""
    if isinstance(entry, Mapping):
        return tuple(entry["by"]), entry.get("where") or {}, entry["field"]
    if getattr(entry, "by", ()):
        return tuple(entry.by), entry.where or {}, entry.field
    return None


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
