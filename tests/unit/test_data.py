"""data.py: JSONL / JSON / CSV loading, the fingerprint and its pin, slices and their names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from harness.data import build_slices, load_dataset, read_rows, where_mask
from harness.errors import DataError, SpecError
from harness.spec_types import DataSpec, SliceSpec

ROWS = [
    {"id": "a", "text": "hello there", "label": "pos", "lang": "en", "n": 3, "neg": False},
    {"id": "b", "text": "hallo", "label": "neg", "lang": "de", "n": 10, "neg": True},
    {"id": "c", "text": "bonjour", "label": "pos", "lang": "fr", "n": 30, "neg": False},
    {"id": "d", "text": "guten tag", "label": "neg", "lang": "de", "n": 1, "neg": False},
]


def spec(path: Path, **kw) -> DataSpec:
    base = dict(path=path, source=path.parent / "suite.yaml", field="data", sha256=None, id="id",
                input=("text",), label="label", features=("lang", "n", "neg"))
    base.update(kw)
    return DataSpec(**base)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def data_error(fn, *args, **kw) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- formats

def test_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    data = load_dataset(spec(path), ["pos", "neg"])
    assert data.ids == ("a", "b", "c", "d")
    assert data.inputs == ("hello there", "hallo", "bonjour", "guten tag")
    assert data.labels == ("pos", "neg", "pos", "neg")
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.features["n"].dtype == float
    assert list(data.features["lang"]) == ["en", "de", "fr", "de"]
    assert len(data) == 4


def test_json_list(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(ROWS), "utf-8")
    data = load_dataset(spec(path), ["pos", "neg"])
    assert data.ids == ("a", "b", "c", "d") and data.labels == ("pos", "neg", "pos", "neg")


def test_csv_values_are_typed(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,text,label,lang,n,neg\n"
                    "a,hello there,pos,en,3,true\n"
                    "b,hallo,neg,de,2.5,False\n"
                    "c,bonjour,pos,,,\n", "utf-8")
    data = load_dataset(spec(path), ["pos", "neg"])
    assert data.ids == ("a", "b", "c")
    assert data.records[0]["n"] == 3 and data.records[1]["n"] == 2.5
    assert data.records[0]["neg"] is True and data.records[1]["neg"] is False
    assert data.records[2]["lang"] is None
    assert np.isnan(data.features["n"][2])


def test_numeric_ids_become_strings(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "text": "x"}, {"id": 2, "text": "y"}])
    data = load_dataset(spec(path, label=None, features=()))
    assert data.ids == ("1", "2") and data.labels is None


def test_several_input_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "q": "why", "ctx": "because"}])
    data = load_dataset(spec(path, input=("q", "ctx"), label=None, features=()))
    assert data.inputs == ({"q": "why", "ctx": "because"},)
    assert data.texts() == ["why\nbecause"]


def test_subset_keeps_order(tmp_path):
    data = load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", ROWS)), ["pos", "neg"])
    sub = data.subset([2, 0])
    assert sub.ids == ("c", "a") and sub.labels == ("pos", "pos")
    assert list(sub.features["n"]) == [30.0, 3.0]


# --------------------------------------------------------------------------- bad data

def test_unsupported_format(tmp_path):
    (tmp_path / "d.txt").write_text("x", "utf-8")
    assert data_error(read_rows, tmp_path / "d.txt") == (
        "d.txt: unsupported data format '.txt'; expected .jsonl, .json, .csv or .parquet")


def test_missing_file(tmp_path):
    assert data_error(read_rows, tmp_path / "nope.jsonl") == "nope.jsonl: data file not found"


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": \n', "utf-8")
    assert data_error(read_rows, tmp_path / "d.jsonl").startswith("d.jsonl: line 2: invalid JSON")


def test_jsonl_line_that_is_not_an_object(tmp_path):
    (tmp_path / "d.jsonl").write_text('[1, 2]\n', "utf-8")
    assert data_error(read_rows, tmp_path / "d.jsonl") == "d.jsonl: line 1: expected a JSON object"


def test_json_that_is_not_a_list(tmp_path):
    (tmp_path / "d.json").write_text('{"id": "a"}', "utf-8")
    assert data_error(read_rows, tmp_path / "d.json") == "d.json: expected a JSON list of objects"


def test_csv_row_with_too_many_values(tmp_path):
    (tmp_path / "d.csv").write_text("id,text\na,x,extra\n", "utf-8")
    assert data_error(read_rows, tmp_path / "d.csv") == "d.csv: line 2: more values than header columns"


def test_not_utf8(tmp_path):
    (tmp_path / "d.jsonl").write_bytes(b'{"id": "\xff"}\n')
    assert data_error(read_rows, tmp_path / "d.jsonl").startswith("d.jsonl: not UTF-8 text")


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_data_set(tmp_path, content):
    (tmp_path / "d.jsonl").write_text(content, "utf-8")
    assert data_error(load_dataset, spec(tmp_path / "d.jsonl")) == (
        "d.jsonl: the data set has no examples")


def test_empty_csv_with_only_a_header(tmp_path):
    (tmp_path / "d.csv").write_text("id,text,label\n", "utf-8")
    assert data_error(load_dataset, spec(tmp_path / "d.csv")) == "d.csv: the data set has no examples"


def test_duplicate_ids(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [*ROWS, dict(ROWS[1])])
    assert data_error(load_dataset, spec(path), ["pos", "neg"]) == (
        "d.jsonl: line 5: duplicate id 'b' (first at line 2)")


def test_missing_id_field(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], {"text": "no id"}])
    assert data_error(load_dataset, spec(path)) == "d.jsonl: line 2: missing id field 'id'"


def test_missing_input_field(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "label": "pos"}])
    assert data_error(load_dataset, spec(path, features=())) == (
        "d.jsonl: line 1: id 'a': missing input field 'text'")


def test_missing_label(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}])
    assert data_error(load_dataset, spec(path, features=()), ["pos", "neg"]) == (
        "d.jsonl: line 1: id 'a': missing label field 'label'")


def test_gold_label_outside_the_label_set(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{**ROWS[0], "label": "meh"}])
    assert data_error(load_dataset, spec(path), ["pos", "neg"]) == (
        "d.jsonl: line 1: id 'a': label 'meh' is not in the suite's labels ['neg', 'pos']")


def test_feature_missing_from_every_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    assert data_error(load_dataset, spec(path, features=("lang", "nope")), ["pos", "neg"]) == (
        "d.jsonl: data.features: feature 'nope' is missing from every row")


# --------------------------------------------------------------------------- sha256 pin

def test_sha256_pin_that_matches(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_dataset(spec(path, sha256=digest), ["pos", "neg"]).sha256 == digest


def test_sha256_pin_mismatch(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    msg = data_error(load_dataset, spec(path, sha256="0" * 64), ["pos", "neg"])
    assert msg == (f"d.jsonl: sha256 is {digest}, but the suite pins {'0' * 64} (update data.sha256 "
                   "if the change is intended)")


# --------------------------------------------------------------------------- where

RECORDS = [
    {"lang": "en", "n": 3, "neg": False, "src": "plot summary"},
    {"lang": "de", "n": 10, "neg": True, "src": "review"},
    {"lang": "fr", "n": 30, "neg": False, "src": "Plot"},
    {"lang": "de", "n": 1, "neg": False},
    {"lang": None, "n": None, "neg": 1, "src": "review"},
]


@pytest.mark.parametrize(("where", "expected"), [
    ({"lang": "de"}, [1, 3]),
    ({"lang": {"eq": "de"}}, [1, 3]),
    ({"lang": {"ne": "de"}}, [0, 2, 4]),
    ({"lang": {"in": ["en", "fr"]}}, [0, 2]),
    ({"lang": {"not_in": ["en", "fr"]}}, [1, 3, 4]),
    ({"n": {"lt": 10}}, [0, 3]),
    ({"n": {"lte": 10}}, [0, 1, 3]),
    ({"n": {"gt": 10}}, [2]),
    ({"n": {"gte": 10}}, [1, 2]),
    ({"n": {"gte": 3, "lt": 30}}, [0, 1]),
    ({"src": {"regex": "^[Pp]lot"}}, [0, 2]),
    ({"src": {"regex": "view"}}, [1, 4]),
    ({"lang": "de", "n": {"lt": 5}}, [3]),
    ({"neg": True}, [1]),  # booleans are not numbers: 1 is not true
    ({"neg": 1}, [4]),
    ({"lang": None}, [4]),
    ({"missing": {"eq": "x"}}, []),
    ({"lang": {"lt": 3}}, []),  # order comparisons never match strings
])
def test_where_operators(where, expected):
    assert list(np.flatnonzero(where_mask(RECORDS, where))) == expected


# --------------------------------------------------------------------------- slices and names

class _Suite:
    def __init__(self, slices):
        self.path = Path("suites/s.yaml")
        self.slices = tuple(slices)


def _data(tmp_path, rows=ROWS):
    return load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", rows)), ["pos", "neg"])


def _by(*fields, where=None, i=0):
    return SliceSpec(name=None, where=where or {}, field=f"slices[{i}]", by=tuple(fields))


def test_by_expansion_names_and_members(tmp_path):
    data = _data(tmp_path)
    slices = build_slices(_Suite([_by("lang"), _by("neg", i=1),
                                  SliceSpec("short", {"n": {"lt": 5}}, "slices[2]")]), data)
    assert list(slices) == ["overall", "lang=de", "lang=en", "lang=fr", "neg=false", "neg=true",
                            "short"]
    assert list(slices["overall"]) == [0, 1, 2, 3]
    assert list(slices["lang=de"]) == [1, 3]
    assert list(slices["neg=true"]) == [1]
    assert list(slices["short"]) == [0, 3]


def test_by_with_several_fields_and_a_where(tmp_path):
    data = _data(tmp_path)
    slices = build_slices(_Suite([_by("lang", "neg", where={"n": {"gte": 1}})]), data)
    assert list(slices)[1:] == ["n>=1 & lang=de & neg=false", "n>=1 & lang=de & neg=true",
                                "n>=1 & lang=en & neg=false", "n>=1 & lang=fr & neg=false"]


def test_by_numbers_are_named_as_json_writes_them(tmp_path):
    rows = [{"id": str(i), "text": "x", "label": "pos", "stars": s} for i, s in enumerate([1, 2.0, 2.5])]
    data = load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", rows), features=()), ["pos", "neg"])
    assert list(build_slices(_Suite([_by("stars")]), data))[1:] == ["stars=1", "stars=2",
                                                                     "stars=2.5"]


def test_a_slice_that_matches_no_example(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(SpecError) as info:
        build_slices(_Suite([SliceSpec("empty", {"lang": "xx"}, "slices[0]")]), data)
    assert str(info.value) == "suites/s.yaml: slices[0]: slice 'empty' matches no example of d.jsonl"


def test_by_on_a_field_absent_from_the_data(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(SpecError) as info:
        build_slices(_Suite([_by("topic")]), data)
    assert str(info.value) == "suites/s.yaml: slices[0].by: by: field 'topic' is not in the data"


def test_by_slices_that_match_nothing(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(SpecError) as info:
        build_slices(_Suite([_by("lang", where={"n": {"gt": 100}})]), data)
    assert str(info.value) == "suites/s.yaml: slices[0]: by: slices match no example"


# --------------------------------------------------------------------------- columns and Parquet

def write_parquet(path: Path, rows) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_reads_like_jsonl(tmp_path):
    from_jsonl = load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", ROWS)), ["pos", "neg"])
    data = load_dataset(spec(write_parquet(tmp_path / "d.parquet", ROWS)), ["pos", "neg"])
    assert data.table is not None
    assert (data.ids, data.inputs, data.labels) == (from_jsonl.ids, from_jsonl.inputs,
                                                    from_jsonl.labels)
    assert data.features["n"].dtype == float and list(data.features["n"]) == [3.0, 10.0, 30.0, 1.0]
    assert list(data.features["neg"]) == [False, True, False, False]
    assert list(data.records) == ROWS
    assert data.sha256 == hashlib.sha256((tmp_path / "d.parquet").read_bytes()).hexdigest()


def test_parquet_errors_name_the_row(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", [ROWS[0], {**ROWS[1], "id": "a"}])
    assert data_error(load_dataset, spec(path), ["pos", "neg"]) == (
        "d.parquet: row 2: duplicate id 'a' (first at row 1)")
    path = write_parquet(tmp_path / "e.parquet", [ROWS[0], {**ROWS[1], "label": "meh"}])
    assert data_error(load_dataset, spec(path), ["pos", "neg"]) == (
        "e.parquet: row 2: id 'b': label 'meh' is not in the suite's labels ['neg', 'pos']")


def test_a_file_that_is_not_parquet(tmp_path):
    (tmp_path / "d.parquet").write_text("nope", "utf-8")
    assert data_error(read_rows, tmp_path / "d.parquet").startswith(
        "d.parquet: not a readable Parquet file")


def test_the_columnar_path_gives_what_the_row_path_gives(tmp_path):
    """Same ids, inputs, labels, features, records and slices whichever reader read the file."""
    from harness import data as data_module

    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    columns = load_dataset(spec(path), ["pos", "neg"])
    rows = data_module._from_rows(read_rows(path), spec(path), ["pos", "neg"], False,
                                  columns.sha256)
    assert columns.table is not None and rows.table is None
    assert (columns.ids, columns.inputs, columns.labels) == (rows.ids, rows.inputs, rows.labels)
    for name, col in rows.features.items():
        assert col.dtype == columns.features[name].dtype
        assert list(col) == list(columns.features[name])
    assert list(columns.records) == list(rows.records)
    suite = _Suite([_by("lang", "neg", where={"n": {"gte": 1}}), _by("n", i=1),
                    SliceSpec("short", {"n": {"lt": 5}, "lang": {"ne": "fr"}}, "slices[2]")])
    a, b = build_slices(suite, columns), build_slices(suite, rows)
    assert list(a) == list(b)
    assert all(list(a[k]) == list(b[k]) for k in a)


def test_values_pyarrow_would_retype_keep_their_json_type(tmp_path):
    """A date string stays a string (pyarrow would read a timestamp): the row reader takes it."""
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "x", "when": "2024-01-02"}])
    data = load_dataset(spec(path, label=None, features=("when",)))
    assert list(data.features["when"]) == ["2024-01-02"]
    assert data.records[0]["when"] == "2024-01-02"


def test_subset_and_concat_keep_the_columns(tmp_path):
    data = load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", ROWS)), ["pos", "neg"])
    sub = data.subset([3, 1])
    assert [r["id"] for r in sub.records] == ["d", "b"] and sub.table.num_rows == 2
    both = sub.concat(data.subset([0]))
    assert both.ids == ("d", "b", "a") and [r["id"] for r in both.records] == ["d", "b", "a"]
    assert list(where_mask(both, {"lang": "de"})) == [True, True, False]


def test_a_numeric_feature_missing_on_some_rows_is_nan_in_columns(tmp_path):
    rows = [{**r} for r in ROWS]
    del rows[1]["n"]
    data = load_dataset(spec(write_jsonl(tmp_path / "d.jsonl", rows)), ["pos", "neg"])
    assert data.table is not None
    n = data.features["n"]
    assert n.dtype == float and np.isnan(n[1]) and list(n[[0, 2, 3]]) == [3.0, 30.0, 1.0]
    assert "n" not in data.records[1] and list(where_mask(data, {"n": {"lt": 5}})) == [
        True, False, False, True]
