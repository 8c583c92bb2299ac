"""metrics.py: every built-in metric on fixed outputs, checked against a reference computation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness import metrics
from harness.errors import SpecError
from harness.metrics import get_metric
from harness.outputs import EvalContext, Outputs

LABELS = ("a", "b", "c")
#                 0  1  2  3  4  5  6  7  8  9
GOLD = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
TEACHER = np.array([0, 0, 1, 2, 2, 2, 0, 1, 1, 1])  # wrong on 3, 8, 9
STUDENT = np.array([0, 1, 1, 2, 2, 0, 0, 1, 2, 0])  # wrong on 1, 3, 5

# Scores: rows are probabilities; the top label of each row is the row's label above.
T_SCORES = np.array([
    [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8],
    [0.05, 0.05, 0.9], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3],
])
S_SCORES = np.array([
    [0.95, 0.03, 0.02], [0.4, 0.45, 0.15], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.05, 0.15, 0.8],
    [0.55, 0.15, 0.3], [0.65, 0.2, 0.15], [0.25, 0.55, 0.2], [0.2, 0.25, 0.55], [0.92, 0.04, 0.04],
])
ALL = np.arange(10)


def ctx(gold=GOLD, scores=True) -> EvalContext:
    return EvalContext(labels=LABELS, gold=gold,
                       teacher=Outputs(labels=TEACHER, scores=T_SCORES if scores else None))


STUDENT_OUT = Outputs(labels=STUDENT, scores=S_SCORES)


def test_accuracy():
    m = get_metric("accuracy")
    assert m.higher_is_better and m.binary and m.kind == "example"
    assert list(m.per_example(ctx(), STUDENT_OUT)) == [1, 0, 1, 0, 1, 0, 1, 1, 1, 1]
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(0.7)
    assert m.value(ctx(), ctx().teacher, ALL) == pytest.approx(0.7)
    assert m.value(ctx(), STUDENT_OUT, np.array([1, 3, 5])) == 0.0


def test_macro_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    m = get_metric("macro_f1")
    assert m.higher_is_better and m.kind == "corpus"
    expected = f1_score(GOLD, STUDENT, average="macro")
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(expected)
    sub = np.array([0, 1, 2, 3, 6])
    expected_sub = f1_score(GOLD[sub], STUDENT[sub], average="macro", labels=[0, 1, 2],
                            zero_division=0)
    assert m.value(ctx(), STUDENT_OUT, sub) == pytest.approx(expected_sub)


def test_agreement():
    m = get_metric("agreement")
    assert m.higher_is_better and not m.needs_gold
    # student == teacher on 0, 2, 3, 4, 6, 7 -> 6 of 10
    assert list(m.per_example(ctx(), STUDENT_OUT)) == [1, 0, 1, 1, 1, 0, 1, 1, 0, 0]
    assert m.value(ctx(gold=None), STUDENT_OUT, ALL) == pytest.approx(0.6)


def test_negative_flip_rate():
    m = get_metric("negative_flip_rate")
    assert not m.higher_is_better
    # teacher right and student wrong: 1, 5
    assert list(np.flatnonzero(m.per_example(ctx(), STUDENT_OUT))) == [1, 5]
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(0.2)


def test_positive_flip_rate():
    m = get_metric("positive_flip_rate")
    assert m.higher_is_better
    # teacher wrong and student right: 8, 9
    assert list(np.flatnonzero(m.per_example(ctx(), STUDENT_OUT))) == [8, 9]
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(0.2)


def test_flip_rates_and_accuracy_are_consistent():
    acc = get_metric("accuracy")
    neg, pos = get_metric("negative_flip_rate"), get_metric("positive_flip_rate")
    delta = acc.value(ctx(), STUDENT_OUT, ALL) - acc.value(ctx(), ctx().teacher, ALL)
    assert delta == pytest.approx(pos.value(ctx(), STUDENT_OUT, ALL) - neg.value(ctx(), STUDENT_OUT, ALL))


def test_kl_divergence_matches_scipy_entropy():
    from scipy.stats import entropy

    m = get_metric("kl_divergence")
    assert not m.higher_is_better and m.needs_scores
    expected = np.array([entropy(T_SCORES[i], S_SCORES[i]) for i in range(10)])
    assert np.allclose(m.per_example(ctx(), STUDENT_OUT), expected)
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(expected.mean())
    # KL of a distribution with itself is 0
    assert np.allclose(m.per_example(ctx(), ctx().teacher), 0.0)


def test_ece_on_a_hand_computed_example():
    # Student confidences (top score) and correctness:
    #   0.95 ok, 0.45 wrong, 0.70 ok, 0.60 wrong, 0.80 ok, 0.55 wrong, 0.65 ok, 0.55 ok, 0.55 ok, 0.92 ok
    # Bins of width 0.1 (a confidence c falls in bin floor(10 c)):
    #   bin 4: {0.45 wrong}                      -> |0 - 0.45|           * 1/10 = 0.045
    #   bin 5: {0.55 w, 0.55 ok, 0.55 ok}        -> |2/3 - 0.55|         * 3/10 = 0.035
    #   bin 6: {0.60 wrong, 0.65 ok}             -> |1/2 - 0.625|        * 2/10 = 0.025
    #   bin 7: {0.70 ok}                         -> |1 - 0.70|           * 1/10 = 0.030
    #   bin 8: {0.80 ok}                         -> |1 - 0.80|           * 1/10 = 0.020
    #   bin 9: {0.95 ok, 0.92 ok}                -> |1 - 0.935|          * 2/10 = 0.013
    expected = 0.045 + 0.035 + 0.025 + 0.030 + 0.020 + 0.013
    m = get_metric("ece")
    assert not m.higher_is_better and m.kind == "corpus"
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(expected)


def test_ece_of_a_perfectly_calibrated_model_is_zero():
    gold = np.array([0, 0, 1, 1])
    out = Outputs(labels=np.array([0, 1, 1, 0]), scores=np.array([[0.5, 0.5, 0.0]] * 4))
    c = EvalContext(labels=LABELS, gold=gold, teacher=out)
    assert get_metric("ece").value(c, out, np.arange(4)) == pytest.approx(0.0)


def test_metrics_that_need_gold_labels_say_so():
    with pytest.raises(SpecError, match="'accuracy' needs gold labels"):
        get_metric("accuracy").value(ctx(gold=None), STUDENT_OUT, ALL)


def test_metrics_that_need_scores_say_so():
    with pytest.raises(SpecError, match="'kl_divergence' needs scores from both models"):
        get_metric("kl_divergence").value(ctx(scores=False), STUDENT_OUT, ALL)


def test_every_metric_declares_its_direction():
    for name in metrics.known_metrics():
        m = get_metric(name)
        assert isinstance(m.higher_is_better, bool)
        assert m.kind in ("example", "corpus", "suite")
        assert m.direction in ("higher", "lower")
        assert m.tasks and m.tasks <= {"classification", "generation"}
        assert (m.per_example_fn is not None) == (m.kind == "example")


def test_a_metric_is_declared_with_keywords_only():
    with pytest.raises(TypeError):
        metrics.Metric("x", frozenset({"generation"}), "higher", "example", "d")  # type: ignore[misc]


def test_a_declaration_that_contradicts_itself_is_refused():
    with pytest.raises(ValueError, match="direction"):
        metrics.Metric(name="x", tasks=frozenset({"generation"}), direction="up", kind="suite",
                       description="d")
    with pytest.raises(ValueError, match="needs its function"):
        metrics.Metric(name="x", tasks=frozenset({"generation"}), direction="higher",
                       kind="example", description="d")


def test_unknown_metric_lists_the_known_ones_with_a_did_you_mean():
    with pytest.raises(SpecError) as info:
        get_metric("acuracy")
    msg = str(info.value)
    assert msg.startswith("unknown metric 'acuracy' (did you mean 'accuracy'?); known metrics: ")
    assert ", ".join(metrics.known_metrics()) in msg


def test_a_metric_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        metrics.register(get_metric("accuracy"))


# --------------------------------------------------------------------------- evaluate modules

LOCAL_MODULE = '''
import datasets
import evaluate


class TinyMatch(evaluate.Metric):
    """Share of predictions equal to their reference (a local module, no hub)."""

    def _info(self):
        return evaluate.MetricInfo(
            description="tiny match", citation="", inputs_description="",
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        hits = sum(int(p == r) for p, r in zip(predictions, references))
        return {"tiny_match": hits / len(predictions), "n": len(predictions)}
'''


@pytest.fixture
def offline(tmp_path, monkeypatch):
    for key in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def test_evaluate_local_module_works_offline(tmp_path, offline, monkeypatch):
    pytest.importorskip("evaluate")
    module = tmp_path / "tiny_match.py"
    module.write_text(LOCAL_MODULE, "utf-8")
    name = f"evaluate:{module}"
    monkeypatch.delitem(metrics._EVALUATE_CACHE, name, raising=False)
    m = get_metric(name)
    assert m.kind == "corpus" and m.higher_is_better
    assert get_metric(name) is m  # loaded once
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(0.7)
    assert m.value(ctx(), STUDENT_OUT, np.array([1, 3, 5, 7])) == pytest.approx(0.25)


def test_evaluate_hub_name_offline_is_a_clear_error_fast(offline):
    start = time.monotonic()
    with pytest.raises(SpecError) as info:
        get_metric("evaluate:accuracy")
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert "'accuracy' is not a local path and the hub is offline" in msg
    assert "evaluate:path/to/accuracy.py" in msg


def test_evaluate_without_a_module_name():
    with pytest.raises(SpecError, match="evaluate: needs a module name"):
        get_metric("evaluate:")


def test_evaluate_module_path_resolves_against_the_rubric(tmp_path, offline, monkeypatch):
    pytest.importorskip("evaluate")
    from harness.spec import load_rubric

    (tmp_path / "pyproject.toml").write_text("")
    rubrics = tmp_path / "rubrics"
    (rubrics / "metrics").mkdir(parents=True)
    (rubrics / "metrics" / "tiny_match.py").write_text(LOCAL_MODULE, "utf-8")
    rubric = rubrics / "r.yaml"
    rubric.write_text("schema_version: 1\nid: r\nversion: 1\ncriteria:\n"
                      "  - {name: m, metric: 'evaluate:metrics/tiny_match.py', compare: value, "
                      "min: 0.5}\n")
    monkeypatch.chdir(tmp_path)  # the working directory is not the rubric's folder
    monkeypatch.delitem(metrics._EVALUATE_CACHE, "evaluate:metrics/tiny_match.py", raising=False)
    spec = load_rubric(rubric)
    m = get_metric(spec.criteria[0].metric)
    assert m.value(ctx(), STUDENT_OUT, ALL) == pytest.approx(0.7)


def test_evaluate_module_path_may_not_leave_the_repository(tmp_path, offline):
    from harness.errors import SpecError
    from harness.spec import load_rubric

    repo = tmp_path / "repo"
    (repo / "rubrics").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    (tmp_path / "outside.py").write_text(LOCAL_MODULE, "utf-8")
    rubric = repo / "rubrics" / "r.yaml"
    rubric.write_text("schema_version: 1\nid: r\nversion: 1\ncriteria:\n"
                      "  - {name: m, metric: 'evaluate:../../outside.py', compare: value, "
                      "min: 0.5}\n")
    with pytest.raises(SpecError, match=r"criteria\[0\]\.metric: .*leaves the repository root"):
        load_rubric(rubric)
