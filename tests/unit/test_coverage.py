"""Coverage gaps on constructed data: support, distillation and embedding gaps."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

from harness.coverage import (
    EmbeddingCoverage,
    distillation_gaps,
    embedding_coverage,
    support_gaps,
)
from harness.results import Check


def make_check(**overrides: Any) -> Check:
    fields: dict[str, Any] = {
        "id": "sentiment::slice_gap[source=plot]",
        "criterion": "slice_gap",
        "scope": "slices",
        "slice": "source=plot",
        "metric": "accuracy",
        "compare": "teacher_delta",
        "value": -0.08,
        "ci": (-0.2, 0.04),
        "n": 12,
        "threshold": {"min": -0.05},
        "verdict": "inconclusive",
        "message": "",
        "needed": 140,
    }
    fields.update(overrides)
    return Check(**fields)


# ------------------------------------------------------------------------------ support gaps


def test_support_gaps_one_gap_per_slice_keeping_the_largest_needed() -> None:
    checks = [
        make_check(),
        make_check(
            id="x", criterion="vs_baseline", compare="baseline_delta", needed=300, threshold={"min": -0.01}
        ),
        make_check(id="y", slice="overall", n=1200, verdict="pass", needed=None),
        make_check(id="z", slice="lang=de", n=40, verdict="inconclusive", needed=95),
        make_check(id="e", slice="broken", verdict="error", needed=None),
    ]
    gaps = support_gaps(checks)
    assert [(g.kind, g.slice, g.n, g.needed) for g in gaps] == [
        ("support", "source=plot", 12, 300),
        ("support", "lang=de", 40, 95),
    ]
    first = gaps[0]
    assert first.extra["criteria"] == ["slice_gap", "vs_baseline"]
    assert "slice_gap" in first.detail and "vs_baseline" in first.detail
    assert "about 300 examples" in first.detail and "about 140 examples" in first.detail
    assert json.loads(json.dumps(first.to_dict()))["needed"] == 300


def test_support_gaps_flags_checks_below_their_minimum_support() -> None:
    checks = [
        make_check(slice="short", verdict="pass", n=8, needed=None),  # passes, but on 8 examples
        make_check(slice="long", verdict="pass", n=80, needed=None),
        make_check(slice="tiny", verdict="fail", n=5, needed=None, extra={"min_support": 10}),
    ]
    gaps = support_gaps(checks, min_support={"slice_gap": 30})
    assert [(g.slice, g.n, g.needed) for g in gaps] == [("short", 8, 30), ("tiny", 5, 10)]
    assert "below the minimum support" in gaps[0].detail
    assert support_gaps(checks) == [g for g in gaps if g.slice == "tiny"]


# ------------------------------------------------------------------------ distillation gaps


def test_distillation_gaps_absent_and_rare_categorical_values() -> None:
    eval_features = {
        "source": np.array(["plot"] * 20 + ["review"] * 75 + ["blog"] * 5, dtype=object),
        "lang": np.array(["de"] * 20 + ["en"] * 80, dtype=object),
        "has_negation": np.array([True] * 50 + [False] * 50, dtype=object),
    }
    distill_features = {
        "source": np.array(["review"] * 100, dtype=object),  # no plots, no blogs
        "lang": np.array(["de"] * 1 + ["en"] * 99, dtype=object),  # de: 1% vs 20% in eval
        "has_negation": np.array([True] * 40 + [False] * 60, dtype=object),
    }
    gaps = distillation_gaps(eval_features, distill_features, eval_slices={}, distill_slices={})
    by_slice = {g.slice: g for g in gaps}
    # blog has 5 eval examples (< min_eval 10): not reported
    assert [g.slice for g in gaps] == ["source=plot", "lang=de"]
    plot = by_slice["source=plot"]
    assert (plot.kind, plot.n) == ("distillation", 20)
    assert plot.extra == {"distill_n": 0, "eval_share": 0.2, "distill_share": 0.0}
    assert "none in the distillation data" in plot.detail
    de = by_slice["lang=de"]
    assert de.extra == {"distill_n": 1, "eval_share": 0.2, "distill_share": 0.01}
    assert "only 1" in de.detail


def test_distillation_gaps_numeric_ranges_and_declared_slices() -> None:
    eval_n_words = np.arange(1, 101, dtype=float)  # 1..100
    distill_n_words = np.concatenate([np.arange(20, 50), np.arange(70, 91)]).astype(float)
    eval_long = np.zeros(100, dtype=bool)
    eval_long[:30] = True
    gaps = distillation_gaps(
        {"n_words": eval_n_words},
        {"n_words": distill_n_words},
        eval_slices={"long_plots": eval_long, "source=plot": np.arange(10), "not_there": eval_long},
        distill_slices={"long_plots": np.zeros(51, dtype=bool), "source=plot": np.arange(5)},
    )
    names = [g.slice for g in gaps]
    # below and above the distillation range, the hole 50..69 inside it, then the slice
    assert names[:2] == ["n_words<20", "n_words>90"]
    assert gaps[0].n == 19 and gaps[1].n == 10
    assert gaps[0].extra["distill_range"] == [20.0, 90.0]
    inside = [g for g in gaps if g.slice == "49<n_words<70"]
    assert len(inside) == 1
    assert inside[0].extra["distill_n"] == 0
    assert inside[0].n == 20  # 50..69
    assert names[-1] == "long_plots"
    assert gaps[-1].n == 30 and gaps[-1].extra["distill_n"] == 0
    # source=plot: 10% of eval, 5/51 ≈ 9.8% of distillation data: not rare
    assert "source=plot" not in names and "not_there" not in names
    for g in gaps:
        json.dumps(g.to_dict())


# -------------------------------------------------------------------------- embedding coverage

COOKING = [
    f"{verb} {food} {tool}"
    for verb, food, tool in itertools.product(
        ["chop", "slice", "roast", "bake"], ["onions", "carrots", "potatoes"], ["knife", "oven"]
    )
]
SPORTS = [
    f"{who} {verb} {thing}"
    for who, verb, thing in itertools.product(
        ["striker", "goalkeeper", "referee"], ["kicks", "catches"], ["football", "penalty", "whistle"]
    )
]
ASTRONOMY = [
    "telescope galaxy nebula",
    "galaxy nebula comet",
    "comet orbit telescope",
    "nebula orbit galaxy",
    "telescope comet nebula",
    "orbit galaxy telescope",
]
GARDENING = [
    "tulips compost seedlings",
    "compost seedlings greenhouse",
    "greenhouse tulips trowel",
    "seedlings trowel compost",
    "tulips greenhouse seedlings",
    "trowel compost tulips",
]


def embedding_fixture() -> tuple[list[str], list[str], list[str], np.ndarray]:
    distill = COOKING + SPORTS
    # eval: six texts seen in distillation, then two topics the distillation data lacks
    covered = COOKING[:3] + SPORTS[:3]
    eval_texts = covered + ASTRONOMY + GARDENING
    ids = [f"c{i}" for i in range(6)] + [f"a{i}" for i in range(6)] + [f"g{i}" for i in range(6)]
    # student - teacher correctness: level on covered, the student loses on the new topics
    gap = np.array([0, 0, 0, 1, -1, 0] + [-1, -1, 0, -1, 0, -1] + [-1, 0, 0, 0, -1, 0], dtype=float)
    return eval_texts, distill, ids, gap


def test_embedding_coverage_finds_and_clusters_topics_absent_from_distillation() -> None:
    eval_texts, distill, ids, gap = embedding_fixture()
    coverage, gaps = embedding_coverage(eval_texts, distill, gain=gap, ids=ids)
    assert isinstance(coverage, EmbeddingCoverage)
    assert coverage.method == "tfidf-cosine"
    assert coverage.uncovered_mask.tolist() == [False] * 6 + [True] * 12
    assert coverage.n_uncovered == 12
    assert coverage.uncovered_fraction == pytest.approx(12 / 18)
    assert 0.0 < coverage.threshold < 1.0
    assert coverage.gap_covered == pytest.approx(0.0)
    assert coverage.gap_uncovered == pytest.approx(-6 / 12)

    assert len(gaps) == 2 and all(g.kind == "embedding" for g in gaps)
    groups = [set(g.extra["ids"]) for g in gaps]
    assert sorted(groups, key=sorted) == [{f"a{i}" for i in range(6)}, {f"g{i}" for i in range(6)}]
    by_topic = {sorted(g.extra["ids"])[0][0]: g for g in gaps}
    assert by_topic["a"].extra["gap"] == pytest.approx(-4 / 6)
    assert by_topic["g"].extra["gap"] == pytest.approx(-2 / 6)
    assert by_topic["a"].n == 6
    # ties in size: the cluster holding the earlier example comes first
    assert gaps[0] is by_topic["a"]
    assert gaps[0].slice.startswith("embedding cluster 1 (terms: ")
    assert set(coverage.clusters[0]["terms"]) <= {"telescope", "galaxy", "nebula", "comet", "orbit"}
    assert gaps[1].slice.startswith("embedding cluster 2 (terms: ")

    summary = coverage.to_dict()
    assert "uncovered_mask" not in summary
    assert json.loads(json.dumps(summary)) == summary
    # deterministic
    again, again_gaps = embedding_coverage(eval_texts, distill, gain=gap, ids=ids)
    assert again.to_dict() == summary and again_gaps == gaps


def test_embedding_coverage_on_given_vectors_without_gap() -> None:
    angles = np.linspace(0.0, np.pi / 2, 20)  # distillation: the first quadrant
    distill_vectors = np.c_[np.cos(angles), np.sin(angles)]
    eval_vectors = np.array([[1.0, 0.05], [0.7, 0.7], [-1.0, 0.0], [-0.9, -0.1], [0.0, -1.0]])
    ids = ["in1", "in2", "out1", "out2", "out3"]
    coverage, gaps = embedding_coverage(
        [""] * 5, [""] * 20, ids=ids, eval_vectors=eval_vectors, distill_vectors=distill_vectors
    )
    assert coverage.method == "vectors-cosine"
    assert coverage.uncovered_mask.tolist() == [False, False, True, True, True]
    assert coverage.gap_covered is None and coverage.gap_uncovered is None
    assert sum(g.n for g in gaps) == 3
    assert all(g.slice.startswith("embedding cluster ") and "terms" not in g.slice for g in gaps)
    assert sorted(i for g in gaps for i in g.extra["ids"]) == ["out1", "out2", "out3"]


def test_embedding_coverage_rejects_misaligned_inputs() -> None:
    with pytest.raises(ValueError, match="ids"):
        embedding_coverage(["a b"], ["a b", "c d"], ids=["x", "y"])
    with pytest.raises(ValueError, match="both"):
        embedding_coverage(["a b"], ["a b"], ids=["x"], eval_vectors=np.ones((1, 2)))


def test_distillation_gaps_index_array_slices_need_set_sizes() -> None:
    eval_slices = {"overall": np.arange(50), "rare": np.arange(20)}
    distill_slices = {"rare": np.array([0]), "overall": np.arange(100)}
    # sizes from the "overall" entries
    gaps = distillation_gaps({}, {}, eval_slices=eval_slices, distill_slices=distill_slices)
    assert [(g.slice, g.n, g.extra["distill_n"]) for g in gaps] == [("rare", 20, 1)]
    # sizes given outright
    only = {"rare": np.arange(20)}
    gaps = distillation_gaps(
        {}, {}, eval_slices=only, distill_slices={"rare": np.array([0])}, n_eval=50, n_distill=100
    )
    assert [g.slice for g in gaps] == ["rare"]
    # sizes unknown: skipped rather than guessed
    assert distillation_gaps({}, {}, eval_slices=only, distill_slices={"rare": np.array([0])}) == []
    with pytest.raises(ValueError, match="no words"):
        embedding_coverage(["!"], ["?", "."], ids=["x"])
