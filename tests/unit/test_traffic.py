"""Drift between eval data and traffic: the statistics against scipy, a null, planted shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from harness.errors import DataError
from harness.stats import bh_adjust
from harness.traffic import Drift, analyse, drift_gaps, feature_drift, psi, uncovered_traffic


def cat(values: list[object]) -> np.ndarray:
    col = np.empty(len(values), dtype=object)
    col[:] = values
    return col


def shifts(drifts: list[Drift]) -> dict[str, Drift]:
    return {d.feature: d for d in drifts if d.kind == "shift"}


# ------------------------------------------------------------------- against scipy, fixed data


def test_categorical_shift_is_scipy_chi_square_on_the_count_table_and_psi_over_categories() -> None:
    ev = cat(["en"] * 60 + ["de"] * 30 + ["fr"] * 10)
    tv = cat(["en"] * 100 + ["de"] * 70 + ["fr"] * 30)
    (d,) = feature_drift({"lang": ev}, {"lang": tv})
    table = np.array([[30, 60, 10], [70, 100, 30]])  # categories sorted: de, en, fr
    ref = stats.chi2_contingency(table)
    assert d.kind == "shift" and d.test == "chi-square"
    assert d.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    pe, pt = table[0] / 100, table[1] / 200
    assert d.psi == pytest.approx(float(np.sum((pt - pe) * np.log(pt / pe))), rel=1e-12)
    assert d.q_value == pytest.approx(d.p_value)  # a family of one
    assert (d.n, d.eval_n) == (200, 100)


def test_two_categories_use_scipys_default_yates_correction() -> None:
    ev = cat([True] * 40 + [False] * 60)
    tv = cat([True] * 70 + [False] * 50)
    (d,) = feature_drift({"neg": ev}, {"neg": tv})
    ref = stats.chi2_contingency(np.array([[60, 40], [50, 70]]))
    assert d.test == "chi-square (Yates)"
    assert d.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_rare_categories_are_pooled_before_the_chi_square() -> None:
    # a, b are common; c, d, e are expected fewer than 5 times in the eval row.
    ev = cat(["a"] * 50 + ["b"] * 40 + ["c"] * 2 + ["d"] * 1 + ["e"] * 1)
    tv = cat(["a"] * 300 + ["b"] * 200 + ["c"] * 6 + ["d"] * 3 + ["e"] * 2)
    (d,) = feature_drift({"f": ev}, {"f": tv})
    pooled = np.array([[50, 40, 4], [300, 200, 11]])
    ref = stats.chi2_contingency(pooled)
    assert d.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_numeric_shift_is_scipy_ks_and_psi_over_the_eval_deciles() -> None:
    ev = np.arange(100, dtype=float)  # deciles at 9.9, 19.8, ...
    tv = np.arange(40, 240, dtype=float) / 2.0 + 20.0  # 40..139.5
    (d,) = feature_drift({"n_words": ev}, {"n_words": tv})
    ref = stats.ks_2samp(ev, tv)
    assert d.test == "ks"
    assert d.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    edges = np.quantile(ev, np.linspace(0, 1, 11)[1:-1])
    e_bins = np.bincount(np.searchsorted(edges, ev, side="right"), minlength=10)
    t_bins = np.bincount(np.searchsorted(edges, tv, side="right"), minlength=10)
    assert e_bins.tolist() == [10] * 10
    pe = e_bins / 100
    pt = np.maximum(t_bins / 200, 1e-4)  # traffic leaves the low bins empty: the floor
    assert d.psi == pytest.approx(float(np.sum((pt - pe) * np.log(pt / pe))), rel=1e-12)
    assert d.flagged
    assert "median 49.5 in the suite, 89.8 in traffic" in d.detail


def test_q_values_are_bh_across_the_features() -> None:
    rng = np.random.default_rng(3)
    ev = {f"x{i}": rng.normal(size=200) for i in range(4)}
    tv = {f"x{i}": rng.normal(loc=0.1 * i, size=400) for i in range(4)}
    drifts = feature_drift(ev, tv)
    ps = [d.p_value for d in drifts]
    assert [d.q_value for d in drifts] == bh_adjust(ps)


def test_psi_floors_empty_bins_and_is_zero_for_the_same_mix() -> None:
    assert psi([10, 20, 30], [20, 40, 60]) == pytest.approx(0.0)
    assert psi([50, 50, 0], [50, 50, 0]) == pytest.approx(0.0)
    share = 0.25
    expected = (share - 1e-4) * np.log(share / 1e-4) + 2 * (0.375 - 0.5) * np.log(0.375 / 0.5)
    assert psi([50, 50, 0], [30, 30, 20]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="one length"):
        psi([1, 2], [1, 2, 3])


# ----------------------------------------------------------------------------- null, planted


def mixed(rng: np.random.Generator, n: int, *, shift: float = 0.0, es: float = 0.0) -> dict[str, np.ndarray]:
    """Three categorical and three numeric features; ``shift`` moves ``length``, ``es``
    replaces that share of ``lang`` with a language the base distribution never has."""
    lang = rng.choice(["en", "de", "fr", "it"], n, p=[0.5, 0.3, 0.197, 0.003]).astype(object)
    if es:
        lang[rng.random(n) < es] = "es"
    source = rng.choice(["web", "app", None], n, p=[0.6, 0.3, 0.1]).astype(object)
    neg = cat((rng.random(n) < 0.2).tolist())
    length = rng.lognormal(3.0 + shift, 0.5, n)
    score = rng.normal(size=n)
    score[rng.random(n) < 0.05] = np.nan
    stars = rng.integers(1, 6, n).astype(float)
    return {"lang": lang, "source": source, "neg": neg, "length": length, "score": score, "stars": stars}


def test_null_traffic_from_the_eval_distribution_gives_no_drift_gap_in_19_of_20_seeds() -> None:
    flagged = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        drifts = feature_drift(mixed(rng, 500), mixed(rng, 2000))
        flagged.append([d.feature for d in drifts if d.flagged])
    clean = sum(1 for f in flagged if not f)
    assert clean >= 19, flagged


def test_a_planted_shift_and_a_new_value_are_found_and_nothing_else() -> None:
    rng = np.random.default_rng(7)
    drifts = feature_drift(mixed(rng, 500), mixed(rng, 2000, shift=0.4, es=0.3))
    gaps = {(d.feature, d.kind) for d in drifts if d.flagged}
    assert gaps == {("length", "shift"), ("lang", "shift"), ("lang", "unseen")}
    by = shifts(drifts)
    assert by["length"].q_value is not None and by["length"].q_value < 1e-6
    assert by["length"].psi is not None and by["length"].psi >= 0.1
    assert "above the suite's 90th percentile" in by["length"].detail


def test_a_significant_but_tiny_shift_on_large_traffic_is_not_a_gap() -> None:
    rng = np.random.default_rng(11)
    (d,) = feature_drift({"x": rng.normal(size=20_000)}, {"x": rng.normal(0.1, 1.0, 40_000)})
    assert d.q_value is not None and d.q_value < 1e-6
    assert d.psi is not None and d.psi < 0.1
    assert not d.flagged
    assert "real but small shift" in d.detail
    (same,) = feature_drift({"x": rng.normal(size=20_000)}, {"x": rng.normal(0.1, 1.0, 40_000)}, min_psi=0.0)
    assert same.flagged  # the effect floor is a parameter


# ----------------------------------------------------------------------------- unseen values


def test_an_unseen_value_is_reported_with_its_traffic_share() -> None:
    ev = cat(["en"] * 70 + ["de"] * 30)
    tv = cat(["en"] * 500 + ["de"] * 190 + ["es"] * 310)
    drifts = feature_drift({"lang": ev}, {"lang": tv})
    unseen = [d for d in drifts if d.kind == "unseen"]
    assert len(unseen) == 1
    u = unseen[0]
    assert (u.feature, u.value, u.share, u.n, u.flagged, u.p_value) == ("lang", "es", 0.31, 310, True, None)
    assert u.needed == 31  # 31% of a 100-example suite
    assert u.detail.startswith("31% of traffic is lang=es (310 of 1000 rows); the suite has none")
    assert u.to_dict()["value"] == "es"


def test_unseen_values_need_the_minimum_share_or_count() -> None:
    ev = cat(["a"] * 100)
    # b: 30 rows (0.3%) -> reported by count; c: 15 rows (0.15%) -> below both; d: 120 (1.2%)
    tv = cat(["a"] * 9835 + ["b"] * 30 + ["c"] * 15 + ["d"] * 120)
    unseen = [d.value for d in feature_drift({"f": ev}, {"f": tv}) if d.kind == "unseen"]
    assert unseen == ["d", "b"]  # largest first
    again = feature_drift({"f": ev}, {"f": tv}, min_count=10_000, min_share=0.002)
    assert [d.value for d in again if d.kind == "unseen"] == ["d", "b"]
    capped = feature_drift({"f": ev}, {"f": tv}, max_unseen=1)
    assert [d.value for d in capped if d.kind == "unseen"] == ["d"]
    assert "1 more unseen values cover 30 traffic rows" in shifts(capped)["f"].detail


def test_booleans_and_numbers_stay_distinct_categories() -> None:
    ev = cat([True] * 50 + [False] * 50)
    tv = cat([True] * 50 + [False] * 40 + [1] * 40)
    unseen = [d for d in feature_drift({"f": ev}, {"f": tv}) if d.kind == "unseen"]
    assert [(d.value, d.n) for d in unseen] == [(1, 40)]


# ----------------------------------------------------------------------------- missing values


def test_missing_numbers_are_tested_as_a_missing_rate_alongside_ks() -> None:
    rng = np.random.default_rng(5)
    ev = rng.normal(size=1000)
    tv = rng.normal(size=1000)
    tv[:400] = np.nan  # the same values where present, but 40% no longer filled in
    (d,) = feature_drift({"score": ev}, {"score": tv})
    ks = stats.ks_2samp(ev, tv[400:])
    miss = stats.chi2_contingency([[0, 1000], [400, 600]])
    assert d.test == "ks+missing"
    assert d.statistic == pytest.approx(ks.statistic)
    assert d.p_value == pytest.approx(min(1.0, 2 * min(ks.pvalue, miss.pvalue)))
    assert d.flagged
    assert "missing in 0% of the suite, 40% of traffic" in d.detail


def test_missing_categories_are_a_category_but_never_an_unseen_value() -> None:
    ev = cat(["web"] * 80 + ["app"] * 20)
    tv = cat(["web"] * 400 + ["app"] * 100 + [None] * 300 + [float("nan")] * 200)
    drifts = feature_drift({"source": ev}, {"source": tv})
    assert [d.kind for d in drifts] == ["shift"]
    (d,) = drifts
    ref = stats.chi2_contingency(np.array([[20, 80, 0], [100, 400, 500]]))
    assert d.statistic == pytest.approx(ref.statistic)
    assert d.flagged and "(missing) 0% → 50%" in d.detail


def test_an_all_missing_column_takes_the_other_sides_kind() -> None:
    ev = np.arange(50, dtype=float)
    tv = cat([None] * 50)
    (d,) = feature_drift({"n": ev}, {"n": tv})
    assert d.test == "missing" and d.flagged
    assert feature_drift({"n": cat([None] * 5)}, {"n": cat([None] * 5)}) == []


# ----------------------------------------------------------------------------- bad input


def test_a_feature_absent_from_traffic_is_a_data_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"traffic_data: traffic_data has no feature 'lang'.*it has: n_words"):
        feature_drift({"lang": cat(["en"]), "n_words": np.ones(1)}, {"n_words": np.ones(3)})


def test_extra_traffic_features_are_ignored() -> None:
    drifts = feature_drift({"n": np.arange(10.0)}, {"n": np.arange(10.0), "extra": cat(["x"] * 10)})
    assert [d.feature for d in drifts] == ["n"]


def test_a_numeric_feature_that_is_text_in_traffic_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"traffic_data.n: feature 'n' is numeric in the eval data and "
                                        r"categorical in traffic_data \(e.g. 'many' in traffic\)"):
        feature_drift({"n": np.arange(5.0)}, {"n": cat([None, "many", 3])})


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="alpha"):
        feature_drift({}, {}, alpha=1.5)
    with pytest.raises(ValueError, match="kind"):
        Drift(feature="x", kind="moved", statistic=None, p_value=None, detail="")


# ----------------------------------------------------------------------------- report shapes


def test_to_dict_is_designs_drift_entry_plus_optional_fields_and_json_able() -> None:
    rng = np.random.default_rng(1)
    drifts = feature_drift(mixed(rng, 300), mixed(rng, 900, es=0.2))
    for d in drifts:
        entry = d.to_dict()
        assert list(entry)[:5] == ["feature", "kind", "statistic", "p_value", "detail"]
        json.dumps(entry, allow_nan=False)
    shift = shifts(drifts)["lang"].to_dict()
    assert {"q_value", "psi", "test", "n", "eval_n", "gap"} <= set(shift)
    assert "value" not in shift


def test_drift_gaps_are_coverage_gaps_of_kind_drift_for_the_flagged_entries() -> None:
    ev = {"lang": cat(["en"] * 70 + ["de"] * 30), "n": np.arange(100.0)}
    tv = {"lang": cat(["en"] * 500 + ["de"] * 190 + ["es"] * 310), "n": np.arange(1000.0) / 10}
    drifts = feature_drift(ev, tv)
    gaps = drift_gaps(drifts)
    rows = [(g.kind, g.slice, g.n, g.needed) for g in gaps]
    assert rows == [("drift", "lang", 1000, None), ("drift", "lang=es", 310, 31)]
    entry = gaps[1].to_dict()
    assert list(entry)[:5] == ["kind", "slice", "n", "needed", "detail"]
    assert entry["drift"] == "unseen" and entry["value"] == "es" and entry["share"] == 0.31
    assert "add about 31 lang=es examples" in entry["detail"]


# ----------------------------------------------------------------------------- uncovered rows

TOPIC_A = "movie film actor plot scene director cast screen story drama comedy role".split()
TOPIC_B = "refund invoice payment card billing charge account order delivery parcel".split()


def sentences(rng: np.random.Generator, words: list[str], n: int) -> list[str]:
    return [" ".join(rng.choice(words, 6)) for _ in range(n)]


def test_traffic_from_a_new_topic_is_uncovered_and_says_where() -> None:
    rng = np.random.default_rng(0)
    eval_texts = sentences(rng, TOPIC_A, 300)
    traffic = sentences(rng, TOPIC_A, 200) + sentences(rng, TOPIC_B, 100)
    agreement = np.array([1.0] * 200 + [0.0] * 50 + [1.0] * 50)
    summary, drift = uncovered_traffic(eval_texts, traffic, agreement=agreement)
    assert drift is not None and drift.kind == "uncovered" and drift.flagged
    assert 0.33 <= summary.uncovered_fraction <= 0.4
    assert summary.uncovered_mask[200:].all()
    assert drift.share == summary.uncovered_fraction and drift.n == summary.n_uncovered
    assert drift.p_value is not None and drift.p_value < 1e-6
    assert "5% expected" in drift.detail and "traffic-2" in drift.detail
    assert "agreement 0.50 there" in drift.detail
    (gap,) = drift_gaps([drift])
    assert (gap.kind, gap.slice, gap.n) == ("drift", "uncovered traffic", drift.n)


def test_traffic_like_the_eval_set_is_not_uncovered() -> None:
    rng = np.random.default_rng(1)
    summary, drift = uncovered_traffic(sentences(rng, TOPIC_A, 300), sentences(rng, TOPIC_A, 300))
    assert drift is None
    assert summary.uncovered_fraction < 0.1


def test_uncovered_traffic_with_given_vectors_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    ev = rng.normal(size=(200, 8)) + np.array([5.0] + [0.0] * 7)
    tv = np.vstack([rng.normal(size=(100, 8)) + np.array([5.0] + [0.0] * 7),
                    rng.normal(size=(100, 8)) + np.array([0.0, 5.0] + [0.0] * 6)])
    summary, drift = uncovered_traffic([], [], eval_vectors=ev, traffic_vectors=tv)
    assert summary.method == "vectors-cosine"
    assert drift is not None and summary.uncovered_mask[100:].all()
    with pytest.raises(DataError, match="agreement has shape"):
        uncovered_traffic(["a b"], ["c d"], agreement=np.ones(3))
    with pytest.raises(DataError, match="at least 2 eval rows"):
        uncovered_traffic(["movie"], ["film"])


# ----------------------------------------------------------------------------- analyse


def test_analyse_gives_the_traffic_block_with_the_gaps_as_drift_and_every_feature_tested() -> None:
    rng = np.random.default_rng(4)
    ev = {"lang": cat(["en"] * 200 + ["de"] * 100), "n": rng.normal(size=300)}
    tv = {"lang": cat(["en"] * 200 + ["de"] * 100 + ["es"] * 100), "n": rng.normal(size=400)}
    eval_texts = sentences(rng, TOPIC_A, 300)
    traffic_texts = sentences(rng, TOPIC_A, 300) + sentences(rng, TOPIC_B, 100)
    agreement = np.array([1.0] * 300 + [0.0] * 100)
    result = analyse(ev, tv, agreement=agreement, eval_texts=eval_texts, traffic_texts=traffic_texts)
    block = result.to_dict()
    assert block["n"] == 400 and block["agreement"] == 0.75
    assert [(d["feature"], d["kind"]) for d in block["drift"]] == [
        ("lang", "shift"), ("lang", "unseen"), ("text", "uncovered")]
    assert [(d["feature"], d["gap"]) for d in block["features"]] == [("lang", True), ("n", False)]
    assert block["pockets"] == [] and 0.2 < block["uncovered_fraction"] < 0.3
    assert [g.slice for g in result.gaps] == ["lang", "lang=es", "uncovered traffic"]
    json.dumps(block, allow_nan=False)


def test_analyse_without_texts_says_so_and_checks_the_agreement_length() -> None:
    result = analyse({"n": np.arange(10.0)}, {"n": np.arange(10.0)})
    assert result.uncovered is None and result.agreement is None and result.n == 10
    assert result.notes == ["uncovered traffic not computed: no texts or vectors of both sides"]
    with pytest.raises(DataError, match="agreement has shape"):
        analyse({"n": np.arange(10.0)}, {"n": np.arange(10.0)}, agreement=np.ones(3))
    words = analyse({}, {}, eval_texts=["a", "b"], traffic_texts=["c"], n_traffic=1)
    assert words.notes == ["uncovered traffic not computed: uncovered traffic: embedding coverage: "
                           "the texts contain no words to compare"]


# ----------------------------------------------------------------------------- reports


def traffic_suite() -> dict[str, object]:
    ev = {"lang": cat(["en"] * 70 + ["de"] * 30)}
    tv = {"lang": cat(["en"] * 500 + ["de"] * 190 + ["es"] * 310)}
    block = analyse(ev, tv, agreement=np.array([1.0] * 900 + [0.0] * 100)).to_dict()
    block["metric"] = "agreement"
    block["pockets"] = [{"slice": "lang=es", "n": 310, "student": 0.68, "teacher": 1.0, "delta": -0.32,
                         "q_value": 0.0001, "confirmed": True, "metric": "agreement"}]
    return {"name": "shop", "path": "suites/shop.yaml", "checks": [], "traffic": block}


def test_the_terminal_shows_agreement_drift_and_traffic_pockets() -> None:
    from harness.report.terminal import traffic_lines

    lines = traffic_lines(traffic_suite()["traffic"])  # type: ignore[arg-type]
    text = "\n".join(lines)
    assert lines[1] == "traffic: 1000 rows, student-teacher agreement 0.900; 1 features tested for drift"
    assert "unseen   lang" in text and "31% of traffic is lang=es" in text
    assert "lang=es   310  agreement  0.680" in text
    assert "note: uncovered traffic not computed" in text
    assert traffic_lines(None) == []


def test_markdown_has_a_traffic_section() -> None:
    from harness.report.markdown import _traffic

    text = "\n".join(_traffic(traffic_suite()["traffic"]))  # type: ignore[arg-type]
    assert text.startswith("### Traffic\n\n1000 traffic rows · student–teacher agreement 0.900")
    assert "| unseen | `lang` | 0.3100 | – | 31% of traffic is lang=es" in text
    assert "| `lang=es` | 310 | agreement | 0.680 | 0.0001 | yes |" in text


def test_each_drift_gap_is_a_warning_annotation_on_the_suite_file() -> None:
    from harness.report.github import annotations, traffic_annotations

    suite = traffic_suite()
    lines = traffic_annotations(suite)
    assert len(lines) == 2
    # the message's % is escaped as GitHub's workflow commands want
    assert lines[1].startswith("::warning file=suites/shop.yaml,title=distill shop traffic drift::31%25 of")
    assert annotations([suite]) == lines
    assert traffic_annotations({"name": "x", "checks": []}) == []
