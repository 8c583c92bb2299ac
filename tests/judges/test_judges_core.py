"""The judge's pure parts: templates, verdicts, per-example outcomes and health figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import judges as J


def test_render_pastes_text_and_keeps_literal_braces():
    text = "Q: {prompt}\nA: {answer_a}\nJSON: {{\"k\": 1}}"
    assert J.render(text, {"prompt": "p", "answer_a": "{x}"}) == 'Q: p\nA: {x}\nJSON: {"k": 1}'


def test_the_last_verdict_wins_and_a_missing_one_is_invalid():
    text = "A [[B]] would mean the second is better. Having read both: [[A]]"
    assert J.parse_verdict(text, J.PAIRWISE_VERDICT) == "A"
    assert J.parse_verdict("I think the first one.", J.PAIRWISE_VERDICT) is None
    assert J.parse_verdict("", J.PAIRWISE_VERDICT) is None
    assert J.parse_verdict("score [[7]] then [[8.5]]", J.POINTWISE_VERDICT) == "8.5"


def test_pairwise_values_follow_the_order_shown():
    assert J.pairwise_value("A", J.STUDENT_FIRST) == 1.0
    assert J.pairwise_value("B", J.STUDENT_FIRST) == 0.0
    assert J.pairwise_value("A", J.TEACHER_FIRST) == 0.0
    assert J.pairwise_value("B", J.TEACHER_FIRST) == 1.0
    assert J.pairwise_value("C", J.TEACHER_FIRST) == 0.5
    assert math.isnan(J.pairwise_value(None, J.STUDENT_FIRST))
    assert J.pointwise_value("7", (1, 10)) == 7.0
    assert math.isnan(J.pointwise_value("11", (1, 10)))


def test_without_swap_half_the_examples_go_each_way_and_the_choice_is_stable():
    ids = [f"q{i}" for i in range(2000)]
    plan = J.orders(ids, swap=False, seed=0)
    first = sum(p == (J.STUDENT_FIRST,) for p in plan)
    assert 900 < first < 1100
    assert plan == J.orders(ids, swap=False, seed=0)
    assert plan != J.orders(ids, swap=False, seed=1)
    assert J.orders(ids[:2], swap=True, seed=0) == [J.ORDERS, J.ORDERS]


def test_both_orders_average_and_an_invalid_judgment_removes_the_example():
    ids = ["w", "split", "wt", "bad"]
    plan = J.orders(ids, swap=True, seed=0)
    verdicts = {("w", J.STUDENT_FIRST): "A", ("w", J.TEACHER_FIRST): "B",          # win, win
                ("split", J.STUDENT_FIRST): "A", ("split", J.TEACHER_FIRST): "A",  # position bias
                ("wt", J.STUDENT_FIRST): "A", ("wt", J.TEACHER_FIRST): "C",        # win, tie
                ("bad", J.STUDENT_FIRST): "A", ("bad", J.TEACHER_FIRST): None}
    j = J.collect_pairwise(ids, plan, verdicts)
    values = j.values()
    assert values[:3].tolist() == [1.0, 0.5, 0.75]
    assert math.isnan(values[3])
    assert j.requests == 8 and j.invalid() == 1
    assert J.consistency(j) == pytest.approx(1 / 3)
    # decisive judgments: w (A first, B second: first, second), split (first, first), wt (first),
    # bad (first): 5 of 6 chose the answer shown first
    assert J.first_preferred(j) == pytest.approx(5 / 6)


def test_a_pure_position_bias_cancels_under_swap():
    ids = [f"q{i}" for i in range(50)]
    plan = J.orders(ids, swap=True, seed=0)
    verdicts = {(i, o): "A" for i in ids for o in J.ORDERS}
    j = J.collect_pairwise(ids, plan, verdicts)
    assert np.all(j.values() == 0.5)
    assert J.first_preferred(j) == 1.0 and J.consistency(j) == 0.0


def test_longer_preferred_finds_a_length_bias():
    ids = [f"q{i}" for i in range(40)]
    plan = J.orders(ids, swap=True, seed=0)
    s_len = np.array([100 if i % 2 else 20 for i in range(40)])
    t_len = np.full(40, 50)
    # the judge always picks the longer answer
    verdicts = {}
    for k, i in enumerate(ids):
        student_longer = s_len[k] > t_len[k]
        verdicts[(i, J.STUDENT_FIRST)] = "A" if student_longer else "B"
        verdicts[(i, J.TEACHER_FIRST)] = "B" if student_longer else "A"
    j = J.collect_pairwise(ids, plan, verdicts)
    assert J.longer_preferred(j, s_len, t_len) == 1.0
    assert J.first_preferred(j) == 0.5


def test_length_controlled_win_rate_moves_toward_a_half_when_only_length_differs():
    k = np.arange(200)
    student_longer = k % 4 != 0                      # the student is longer in 3 of 4 examples
    s_len = np.where(student_longer, 160.0, 40.0)
    t_len = np.full(200, 100.0)
    # the judge looks only at length: it picks the longer answer in 4 of 5 examples
    picks_longer = k % 5 != 0
    outcome = np.where(picks_longer == student_longer, 1.0, 0.0)
    raw = outcome.mean()
    lc, ci = J.length_controlled(outcome, s_len, t_len, seed=0)
    assert raw == pytest.approx(0.65)
    assert lc == pytest.approx(0.5, abs=0.01)
    assert ci[0] <= lc <= ci[1] and ci[1] - ci[0] < 0.3


def test_length_controlled_win_rate_keeps_a_real_win_with_equal_lengths_spread():
    k = np.arange(100)
    s_len = 100.0 + (k // 10) * 8 - 36               # lengths vary by block of ten examples,
    t_len = np.full(100, 100.0)                      # and within each block every outcome occurs
    outcome = np.where(k % 10 < 7, 1.0, 0.0)        # the student wins 70%, whatever the lengths
    outcome[k % 10 == 9] = 0.5
    lc, _ = J.length_controlled(outcome, s_len, t_len, seed=0)
    assert lc == pytest.approx(outcome.mean(), abs=0.08)


def test_agreement_and_kappa_with_a_persons_labels():
    judged = np.array([1.0, 0.0, 0.5, 1.0, np.nan, 0.75])
    human = ["student", "teacher", "tie", "teacher", "student", None]
    out = J.agreement(judged, human)
    assert out["n"] == 4 and out["rate"] == 0.75
    assert -1.0 <= out["kappa"] <= 1.0
