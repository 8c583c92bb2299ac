"""models/predictions.py and models/callable.py: checked, aligned outputs from fixed files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.data import Dataset
from harness.errors import DataError, ModelError, SpecError
from harness.models import load_model
from harness.spec_types import ModelSpec

LABELS = ["pos", "neg"]


def dataset(ids=("a", "b", "c")) -> Dataset:
    return Dataset(path=Path("data/eval.jsonl"), sha256="0" * 64, ids=tuple(ids),
                   inputs=tuple(f"text {i}" for i in ids), labels=None,
                   records=tuple({"id": i, "text": f"text {i}", "lang": "en"} for i in ids))


def pred_spec(path: Path) -> ModelSpec:
    return ModelSpec(type="predictions", source=path.parent / "suite.yaml", field="student",
                     path=path.name, local_path=path)


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


GOOD = (
    '{"id": "c", "label": "neg", "scores": {"pos": 0.25, "neg": 0.75}}',
    '{"id": "a", "label": "pos", "scores": {"pos": 0.9, "neg": 0.1}}',
    '',
    '{"id": "b", "label": "pos", "scores": {"pos": 0.6, "neg": 0.4}}',
)


def predict_error(tmp_path, *lines: str, ids=("a", "b", "c")) -> str:
    path = write(tmp_path / "p.jsonl", *lines)
    model = load_model(pred_spec(path), "student")
    with pytest.raises(DataError) as info:
        model.predict(dataset(ids), LABELS)
    assert "\n" not in str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- predictions files

def test_predictions_are_aligned_to_the_data_order(tmp_path):
    path = write(tmp_path / "p.jsonl", *GOOD)
    model = load_model(pred_spec(path), "student")
    pred = model.predict(dataset(), LABELS)
    assert pred.ids == ("a", "b", "c")
    assert pred.labels == ("pos", "pos", "neg")
    assert np.allclose(pred.scores, [[0.9, 0.1], [0.6, 0.4], [0.25, 0.75]])


def test_predictions_without_scores(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "label": "pos"}', '{"id": "b", "label": "neg"}')
    pred = load_model(pred_spec(path), "student").predict(dataset(("a", "b")), LABELS)
    assert pred.labels == ("pos", "neg") and pred.scores is None


def test_generation_predictions(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "output": "hi"}', '{"id": "b", "output": "yo"}')
    pred = load_model(pred_spec(path), "student").predict(dataset(("a", "b")), [])
    assert pred.outputs == ("hi", "yo") and pred.labels is None


def test_fingerprint_is_the_file_content(tmp_path):
    path = write(tmp_path / "p.jsonl", *GOOD)
    first = load_model(pred_spec(path), "student").fingerprint()
    assert len(first) == 64
    assert load_model(pred_spec(path), "teacher").fingerprint() == first
    write(path, *GOOD[:2], GOOD[3].replace("0.6", "0.61").replace("0.4", "0.39"))
    assert load_model(pred_spec(path), "student").fingerprint() != first


def test_a_missing_id(tmp_path):
    assert predict_error(tmp_path, GOOD[0], GOOD[1]) == "p.jsonl: 1 example id(s) have no prediction: 'b'"


def test_many_missing_ids_are_summarised(tmp_path):
    msg = predict_error(tmp_path, GOOD[1], ids=("a", "b", "c", "d", "e", "f"))
    assert msg == "p.jsonl: 5 example id(s) have no prediction: 'b', 'c', 'd' and 2 more"


def test_a_line_without_an_id(tmp_path):
    assert predict_error(tmp_path, GOOD[1], '{"label": "pos"}') == (
        "p.jsonl: line 2: expected an object with an 'id'")


def test_a_duplicate_id(tmp_path):
    assert predict_error(tmp_path, *GOOD, GOOD[1]) == (
        "p.jsonl: line 5: duplicate id 'a' (first at line 2)")


def test_an_id_not_in_the_data(tmp_path):
    assert predict_error(tmp_path, *GOOD, '{"id": "z", "label": "pos"}') == (
        "p.jsonl: line 5: id 'z' is not in the data set data/eval.jsonl")


def test_a_label_outside_the_label_set(tmp_path):
    assert predict_error(tmp_path, GOOD[0], '{"id": "a", "label": "meh"}', GOOD[3]) == (
        "p.jsonl: line 2: id 'a': label 'meh' is not one of pos, neg")


def test_a_missing_label(tmp_path):
    assert predict_error(tmp_path, '{"id": "a", "scores": {"pos": 1.0}}') == (
        "p.jsonl: line 1: id 'a': missing label")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '"0.5"', "null", "true"])
def test_a_score_that_is_not_a_finite_number(tmp_path, value):
    line = '{"id": "a", "label": "pos", "scores": {"pos": ' + value + ', "neg": 0.1}}'
    msg = predict_error(tmp_path, GOOD[0], line, GOOD[3])
    assert msg.startswith("p.jsonl: line 2: id 'a': score for 'pos' is ")
    assert msg.endswith(", expected a finite number")


def test_scores_that_do_not_sum_to_one(tmp_path):
    line = '{"id": "a", "label": "pos", "scores": {"pos": 0.7, "neg": 0.1}}'
    assert predict_error(tmp_path, GOOD[0], line, GOOD[3]) == (
        "p.jsonl: line 2: id 'a': scores sum to 0.8, expected 1")


def test_a_score_outside_0_1(tmp_path):
    line = '{"id": "a", "label": "pos", "scores": {"pos": 1.5, "neg": -0.5}}'
    assert predict_error(tmp_path, GOOD[0], line, GOOD[3]) == (
        "p.jsonl: line 2: id 'a': score for 'pos' is 1.5, outside [0, 1]")


def test_a_score_for_an_unknown_label(tmp_path):
    line = '{"id": "a", "label": "pos", "scores": {"pos": 0.9, "meh": 0.1}}'
    assert predict_error(tmp_path, GOOD[0], line, GOOD[3]) == (
        "p.jsonl: line 2: id 'a': score for unknown label 'meh'")


def test_scores_on_some_lines_only(tmp_path):
    assert predict_error(tmp_path, GOOD[0], '{"id": "a", "label": "pos"}', GOOD[3]) == (
        "p.jsonl: line 2: id 'a': scores must be given for every line or none")


def test_a_line_that_is_not_json(tmp_path):
    assert predict_error(tmp_path, GOOD[0], "{nope").startswith("p.jsonl: line 2: invalid JSON")


def test_a_generation_line_without_output(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"id": "a", "label": "x"}')
    with pytest.raises(DataError, match=r"p.jsonl: line 1: id 'a': missing output"):
        load_model(pred_spec(path), "student").predict(dataset(("a",)), [])


# --------------------------------------------------------------------------- columns and Parquet

def write_parquet(path: Path, rows) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_predictions_are_aligned_to_the_data_order(tmp_path):
    rows = [json.loads(line) for line in GOOD if line]
    path = write_parquet(tmp_path / "p.parquet", rows)
    pred = load_model(pred_spec(path), "student").predict(dataset(), LABELS)
    assert pred.ids == ("a", "b", "c") and pred.labels == ("pos", "pos", "neg")
    assert np.allclose(pred.scores, [[0.9, 0.1], [0.6, 0.4], [0.25, 0.75]])


def test_parquet_generation_predictions_with_usage(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", [
        {"id": "b", "output": "yo", "usage": {"input_tokens": 3, "output_tokens": 1},
         "finish_reason": "length"},
        {"id": "a", "output": "hi", "usage": {"input_tokens": 4, "output_tokens": 2},
         "finish_reason": "stop"}])
    pred = load_model(pred_spec(path), "student").predict(dataset(("a", "b")), [])
    assert pred.outputs == ("hi", "yo") and pred.finish_reasons == ("stop", "length")
    assert list(pred.input_tokens) == [4, 3] and list(pred.output_tokens) == [2, 1]


def test_parquet_errors_name_the_row(tmp_path):
    path = write_parquet(tmp_path / "p.parquet", [{"id": "a", "label": "pos"},
                                                  {"id": "b", "label": "meh"}])
    with pytest.raises(DataError) as info:
        load_model(pred_spec(path), "student").predict(dataset(("a", "b")), LABELS)
    assert str(info.value) == "p.parquet: row 2: id 'b': label 'meh' is not one of pos, neg"


def test_the_columnar_reader_gives_what_the_line_reader_gives(tmp_path):
    from harness.models import predictions

    path = write(tmp_path / "p.jsonl", *GOOD)
    model = load_model(pred_spec(path), "student")
    columns = predictions._read_columns(path, dataset(), LABELS)
    lines = model._read_lines(dataset(), LABELS)
    assert columns is not None and columns.labels == lines.labels
    assert np.array_equal(columns.scores, lines.scores)
    gen = write(tmp_path / "g.jsonl", '{"id": "b", "output": "yo", "usage": {"input_tokens": 3}}',
                '{"id": "a", "output": "hi", "usage": {"input_tokens": 4}}')
    columns = predictions._read_columns(gen, dataset(("a", "b")), [])
    lines = load_model(pred_spec(gen), "student")._read_lines(dataset(("a", "b")), [])
    assert columns is not None and columns.outputs == lines.outputs == ("hi", "yo")
    assert list(columns.input_tokens) == list(lines.input_tokens) == [4, 3]
    assert columns.output_tokens is None and lines.output_tokens is None


def test_a_file_is_parsed_once_for_validation_and_the_run(tmp_path, monkeypatch):
    from harness.models import predictions

    calls = []
    real = predictions._read_columns
    monkeypatch.setattr(predictions, "_read_columns",
                        lambda *a: calls.append(1) or real(*a))
    path = write(tmp_path / "p.jsonl", *GOOD)
    load_model(pred_spec(path), "student").validate(dataset(), LABELS)
    pred = load_model(pred_spec(path), "student").predict(dataset(), LABELS)
    assert pred.labels == ("pos", "pos", "neg") and len(calls) == 1


def test_a_valid_file_leaves_a_record_and_is_not_read_again_at_collection(tmp_path, monkeypatch):
    from harness.models import predictions
    from harness.options import Options

    calls = []
    real = predictions._read_columns
    monkeypatch.setattr(predictions, "_read_columns", lambda *a: calls.append(1) or real(*a))
    path = write(tmp_path / "p.jsonl", *GOOD)
    options = Options(cache_dir=tmp_path / "cache")
    load_model(pred_spec(path), "student", options).validate(dataset(), LABELS)
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "validated").glob("*.json"))) == 1
    predictions._PARSED.clear()  # a new process
    load_model(pred_spec(path), "student", options).validate(dataset(), LABELS)
    assert len(calls) == 1
    # another content is another record: validated again, and its breach reported
    write(path, *GOOD[:2])
    with pytest.raises(DataError, match="1 example id"):
        load_model(pred_spec(path), "student", options).validate(dataset(), LABELS)


# --------------------------------------------------------------------------- callables

MODULE = '''
CALLS = []

def labels(examples):
    CALLS.append(len(examples))
    return ["pos" if ex["lang"] == "en" and ex["id"] != "b" else "neg" for ex in examples]

def dicts(examples):
    return [{"label": "pos", "scores": {"pos": 0.8, "neg": 0.2}} for _ in examples]

def bad_label(examples):
    return ["meh" for _ in examples]

def too_few(examples):
    return ["pos"]

def nan_score(examples):
    return [{"label": "pos", "scores": {"pos": float("nan"), "neg": 0.2}} for _ in examples]

def unnormalised(examples):
    return [{"label": "pos", "scores": {"pos": 0.8, "neg": 0.8}} for _ in examples]

def boom(examples):
    raise RuntimeError("model server down")

def echo(examples):
    return [{"output": ex["input"].upper()} for ex in examples]

NOT_CALLABLE = 3
'''


@pytest.fixture
def fake_models(tmp_path, monkeypatch):
    (tmp_path / "fake_models_mod.py").write_text(MODULE, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_models_mod", raising=False)
    yield
    sys.modules.pop("fake_models_mod", None)


def call_spec(tmp_path, target: str) -> ModelSpec:
    return ModelSpec(type="callable", source=tmp_path / "suites" / "s.yaml", field="student",
                     target=target)


def test_callable_returns_labels_in_order(tmp_path, fake_models):
    model = load_model(call_spec(tmp_path, "fake_models_mod:labels"), "student")
    pred = model.predict(dataset(), LABELS)
    assert pred.labels == ("pos", "neg", "pos") and pred.scores is None
    assert sys.modules["fake_models_mod"].CALLS == [3]  # one call with every example


def test_callable_returns_dicts_with_scores(tmp_path, fake_models):
    pred = load_model(call_spec(tmp_path, "fake_models_mod:dicts"), "student").predict(dataset(), LABELS)
    assert pred.labels == ("pos",) * 3
    assert np.allclose(pred.scores, [[0.8, 0.2]] * 3)


def test_callable_for_generation(tmp_path, fake_models):
    pred = load_model(call_spec(tmp_path, "fake_models_mod:echo"), "student").predict(dataset(), [])
    assert pred.outputs == ("TEXT A", "TEXT B", "TEXT C")


def test_callable_fingerprint_follows_its_source(tmp_path, fake_models):
    a = load_model(call_spec(tmp_path, "fake_models_mod:labels"), "student").fingerprint()
    b = load_model(call_spec(tmp_path, "fake_models_mod:dicts"), "student").fingerprint()
    assert len(a) == 64 and a != b


def model_error(tmp_path, target: str, labels=LABELS) -> str:
    model = load_model(call_spec(tmp_path, target), "student")
    with pytest.raises(ModelError) as info:
        model.predict(dataset(), labels)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{Path('suites/s.yaml')}: student.target: ")
    return msg


def test_callable_that_cannot_be_imported(tmp_path, fake_models):
    assert "cannot import 'no_such_module_xyz'" in model_error(tmp_path, "no_such_module_xyz:f")


def test_callable_attribute_missing(tmp_path, fake_models):
    assert "'fake_models_mod' has no attribute 'nope'" in model_error(tmp_path, "fake_models_mod:nope")


def test_callable_target_not_callable(tmp_path, fake_models):
    assert "'fake_models_mod:NOT_CALLABLE' is not callable" in model_error(
        tmp_path, "fake_models_mod:NOT_CALLABLE")


def test_callable_label_outside_the_label_set(tmp_path, fake_models):
    assert "prediction 0 (id 'a'): label 'meh' is not one of pos, neg" in model_error(
        tmp_path, "fake_models_mod:bad_label")


def test_callable_returning_too_few_predictions(tmp_path, fake_models):
    assert "returned 1 predictions for 3 examples" in model_error(tmp_path, "fake_models_mod:too_few")


def test_callable_that_raises(tmp_path, fake_models):
    assert "fake_models_mod:boom raised RuntimeError: model server down" in model_error(
        tmp_path, "fake_models_mod:boom")


def test_callable_nan_score(tmp_path, fake_models):
    message = model_error(tmp_path, "fake_models_mod:nan_score")
    assert "score for 'pos' is nan, expected a finite number" in message


def test_callable_scores_not_summing_to_one(tmp_path, fake_models):
    assert "scores sum to 1.6, expected 1" in model_error(tmp_path, "fake_models_mod:unnormalised")


def test_unknown_model_type(tmp_path):
    spec = ModelSpec(type="onnx", source=tmp_path / "s.yaml", field="teacher")
    with pytest.raises(SpecError, match="unknown model type 'onnx'"):
        load_model(spec, "teacher")


def test_predictions_file_is_valid_json_per_line():
    # the committed example files stay valid predictions files
    root = Path(__file__).resolve().parents[1] / "data" / "tinyrepo" / "data"
    for name in ("teacher.jsonl", "student.jsonl"):
        for line in (root / name).read_text("utf-8").splitlines():
            obj = json.loads(line)
            assert set(obj) == {"id", "label", "scores"}
            assert sum(obj["scores"].values()) == pytest.approx(1.0)
