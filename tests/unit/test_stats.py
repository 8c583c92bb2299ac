"""Known-answer and behaviour tests of harness.stats (paired tests, CIs, q-values, sizes)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from harness import stats as hs
from harness.gate import decide


def paired(*, both: int, b: int, c: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Student and reference 0/1 outcomes with the given paired 2x2 cell counts.

    ``b``: reference right, student wrong; ``c``: student right, reference wrong.
    """
    student = np.repeat([1.0, 0.0, 1.0, 0.0], [both, b, c, neither])
    reference = np.repeat([1.0, 1.0, 0.0, 0.0], [both, b, c, neither])
    return student, reference


def outcomes(k: int, n: int) -> np.ndarray:
    return np.repeat([1.0, 0.0], [k, n - k])


# A fixed, non-binary paired sample (no random fakes): a smooth deterministic pattern.
POSITIONS = np.arange(150)
SCORES = 0.6 + 0.3 * np.sin(POSITIONS * 0.7) + 0.002 * POSITIONS
TEACHER_SCORES = SCORES + 0.05 + 0.1 * np.cos(POSITIONS * 1.3)


# ---------------------------------------------------------------- known answers


def test_exact_mcnemar_matches_textbook_binomial_tail() -> None:
    s, r = paired(both=60, b=11, c=3, neither=26)
    result = hs.compare_test(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=0.0, binary=True
    )
    # P(X >= 11) for X ~ Binomial(14, 1/2) = (C(14,11)+C(14,12)+C(14,13)+C(14,14)) / 2^14
    assert result.p_value == pytest.approx((364 + 91 + 14 + 1) / 2**14, rel=1e-12)
    assert result.p_value == pytest.approx(1 - stats.binom.cdf(10, 14, 0.5), rel=1e-12)
    assert result.value == pytest.approx(-0.08)
    assert result.n == 100
    assert result.method == "exact McNemar, b=11 c=3 (margin 0)"
    low, high = result.ci
    assert low < result.value < high


def test_exact_mcnemar_max_bound_is_the_mirror_image() -> None:
    s, r = paired(both=60, b=11, c=3, neither=26)
    result = hs.compare_test(
        student=s, reference=r, compare="baseline_delta", bound="max", threshold=0.0, binary=True
    )
    assert result.p_value == pytest.approx(stats.binom.sf(2, 14, 0.5), rel=1e-12)
    swapped = hs.compare_test(
        student=r, reference=s, compare="baseline_delta", bound="min", threshold=0.0, binary=True
    )
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)


def test_binomial_value_min_and_max_bounds() -> None:
    accuracy = hs.compare_test(
        student=outcomes(45, 60),
        reference=None,
        compare="value",
        bound="min",
        threshold=0.85,
        binary=True,
    )
    assert accuracy.p_value == pytest.approx(stats.binom.cdf(45, 60, 0.85), rel=1e-10)
    # Clopper-Pearson from its beta-quantile formula: the inversion of the exact test
    assert accuracy.ci == pytest.approx(
        (stats.beta.ppf(0.025, 45, 16), stats.beta.ppf(0.975, 46, 15)), rel=1e-9
    )
    flips = hs.compare_test(
        student=outcomes(9, 100),
        reference=None,
        compare="value",
        bound="max",
        threshold=0.06,
        binary=True,
    )
    assert flips.p_value == pytest.approx(stats.binom.sf(8, 100, 0.06), rel=1e-10)
    assert flips.method == "exact binomial, k=9 n=100 vs 0.06"


@pytest.mark.parametrize("confidence", [0.90, 0.95])
def test_clopper_pearson_matches_scipy_exact_interval(confidence: float) -> None:
    for n in (1, 7, 30, 200):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            expected = stats.binomtest(k, n).proportion_ci(confidence_level=confidence,
                                                           method="exact")
            result = hs.compare_test(student=outcomes(k, n), reference=None, compare="value",
                                     bound="min", threshold=0.5, binary=True,
                                     confidence=confidence)
            assert result.ci == pytest.approx((expected.low, expected.high), abs=1e-9), (k, n)


def test_wilson_interval_matches_the_formula() -> None:
    k, n, z = 3, 10, stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert hs.wilson_interval(k, n, 0.95) == pytest.approx((centre - half, centre + half))
    assert hs.wilson_interval(successes=k, n=n, confidence=0.95) == hs.wilson_interval(k, n, 0.95)
    assert hs.wilson_interval(0, 0, 0.95) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        hs.wilson_interval(11, 10, 0.95)


@pytest.mark.parametrize(
    ("value", "lo", "hi", "out"),
    [
        (0.5, 0.6, None, True),
        (0.6, 0.6, None, False),  # on the bound: met
        (0.7, None, 0.6, True),
        (0.6, None, 0.6, False),
        (0.5, 0.4, 0.6, False),
        (0.5, None, None, False),
        (math.nan, 0.4, 0.6, False),
    ],
)
def test_breaches_is_strictly_outside_the_bounds(value, lo, hi, out) -> None:
    assert hs.breaches(value, min=lo, max=hi) is out


def test_bh_matches_scipy_on_a_fixed_list() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    expected = stats.false_discovery_control(np.array(p), method="bh")
    assert hs.bh_adjust(p) == pytest.approx(list(expected))


def test_bh_hand_computed_example_with_nones_outside_the_family() -> None:
    # Family of four: sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.02, 0.04, 0.04 after the
    # running minimum from the top. None (and NaN) are not in the family.
    q = hs.bh_adjust([0.01, None, 0.04, 0.03, float("nan"), 0.005])
    assert q[1] is None and q[4] is None
    assert [q[0], q[2], q[3], q[5]] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert hs.bh_adjust([]) == []
    assert hs.bh_adjust([None]) == [None]


def _score_statistic(b: int, c: int, n: int, m: float) -> float:
    """Tango's score statistic with the restricted MLE found numerically (independent)."""
    a = n - b - c

    def negative_loglik(t: float) -> float:
        return -(b * math.log(t) + c * math.log(t + m) + a * math.log(1 - 2 * t - m))

    lo, hi = max(0.0, -m) + 1e-12, (1 - m) / 2 - 1e-12
    t = optimize.minimize_scalar(negative_loglik, bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-13}).x
    return (c - b - n * m) / math.sqrt(n * (2 * t + m - m * m))


def test_paired_difference_ci_inverts_the_corrected_score_test() -> None:
    s, r = paired(both=150, b=24, c=8, neither=18)
    result = hs.compare_test(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=-0.05,
        binary=True,
    )
    low, high = result.ci
    # at each end the corrected test's one-sided p-value is the CI's one-sided level
    assert hs.paired_proportion_p(24, 8, 200, high) == pytest.approx(0.025, abs=1e-9)
    assert 1 - hs.paired_proportion_p(24, 8, 200, low) == pytest.approx(0.025, abs=1e-9)
    # which is wider than the plain score interval (the corrections are conservative)
    z = stats.norm.ppf(0.975)
    assert _score_statistic(24, 8, 200, low) > z
    assert _score_statistic(24, 8, 200, high) < -z
    assert result.value == pytest.approx(-0.08)
    assert result.method.startswith("SCAS score test")
    # The one-sided p-value is close to the plain score test's (a small skewness correction).
    plain = stats.norm.cdf(_score_statistic(24, 8, 200, -0.05))
    assert result.p_value == pytest.approx(plain, rel=0.25)


# R ratesci (Laud's reference implementation of the SCAS method) on 344 paired tables, n 30
# to 2,000: scripts/ratesci_reference.R wrote these files.
RATESCI = Path(__file__).resolve().parents[1] / "data"


def _ratesci_rows(name: str) -> list[dict[str, str]]:
    with (RATESCI / name).open(newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _table(row: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    return paired(both=int(row["a"]), b=int(row["b"]), c=int(row["c"]), neither=int(row["d"]))


def test_paired_difference_interval_matches_ratesci_scas() -> None:
    rows = _ratesci_rows("ratesci_intervals.csv")
    assert len(rows) >= 330
    worst = 0.0
    for row in rows:
        s, r = _table(row)
        for level in ("90", "95"):
            # any non-zero margin: the interval does not depend on it
            result = hs.compare_test(student=s, reference=r, compare="teacher_delta",
                                     bound="min", threshold=-0.05, binary=True,
                                     confidence=int(level) / 100)
            expected = (float(row[f"lower_{level}"]), float(row[f"upper_{level}"]))
            assert result.ci == pytest.approx(expected, abs=5e-5), (row, level, result.ci)
            worst = max(worst, *(abs(a - b) for a, b in zip(result.ci, expected, strict=True)))
    # ratesci's ends are rounded to 1e-10; the solution itself agrees to that rounding
    assert worst < 1e-9


def test_paired_difference_p_value_matches_ratesci_scas() -> None:
    rows = _ratesci_rows("ratesci_pvalues.csv")
    assert len(rows) >= 1300
    for row in rows:
        margin = float(row["margin"])
        expected = float(row["p_value"])  # ratesci's pval_left: H0 "delta >= margin"
        n, b, c = int(row["n"]), int(row["b"]), int(row["c"])
        assert hs.paired_proportion_p(b, c, n, margin) == pytest.approx(expected, abs=1e-5), row
        if margin != -0.05:
            continue  # (the checks' own path, on one margin: each call also finds the CI)
        s, r = _table(row)
        low = hs.compare_test(student=s, reference=r, compare="teacher_delta", bound="min",
                              threshold=margin, binary=True)
        assert low.p_value == pytest.approx(expected, abs=1e-5), (row, low.p_value)
        # the max bound tests the other side of the same statistic
        high = hs.compare_test(student=s, reference=r, compare="teacher_delta", bound="max",
                               threshold=margin, binary=True)
        assert high.p_value == pytest.approx(1 - expected, abs=1e-5), (row, high.p_value)


@pytest.mark.parametrize("b, c, n, m", [(24, 8, 200, -0.05), (3, 30, 100, 0.1),
                                        (60, 2, 500, -0.2), (0, 9, 30, 0.02)])
def test_scas_statistic_solves_the_skewness_equation(b: int, c: int, n: int, m: float) -> None:
    # z + g/6 (z^2 - 1) = t, with t the continuity-corrected Tango statistic and g the
    # skewness of the standardised sum at the restricted MLE
    t = hs._tango_z(b, c, n, m, continuity=0.5)
    rate = hs._restricted_rate(b, c, n, m)
    probs = np.array([rate, 1 - 2 * rate - m, rate + m])  # difference -1, 0, +1
    values = np.array([-1.0, 0.0, 1.0])
    var = float(probs @ (values - m) ** 2)
    g = float(probs @ (values - m) ** 3) / (var**1.5 * math.sqrt(n))
    z = hs._corrected_z(b, c, n, m)
    assert z + g / 6 * (z * z - 1) == pytest.approx(t, abs=1e-12)
    assert abs(z - t) < 0.5  # the root on the branch through t, not the far one


def test_paired_difference_with_margin_is_mirror_symmetric() -> None:
    s, r = paired(both=150, b=24, c=8, neither=18)
    low = hs.compare_test(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=-0.05,
        binary=True,
    )
    high = hs.compare_test(
        student=r, reference=s, compare="teacher_delta", bound="max", threshold=0.05,
        binary=True,
    )
    assert high.p_value == pytest.approx(low.p_value, rel=1e-9)
    assert high.ci == pytest.approx((-low.ci[1], -low.ci[0]), abs=1e-8)


def test_bootstrap_max_bound_is_the_mirror_image() -> None:
    kwargs = dict(compare="teacher_delta", binary=False, seed=3, n_resamples=1000)
    low = hs.compare_test(
        student=SCORES, reference=TEACHER_SCORES, bound="min", threshold=-0.045, **kwargs
    )
    high = hs.compare_test(
        student=-SCORES, reference=-TEACHER_SCORES, bound="max", threshold=0.045, **kwargs
    )
    assert high.value == pytest.approx(-low.value)
    assert high.p_value == pytest.approx(low.p_value, rel=1e-9)
    assert high.ci == pytest.approx((-low.ci[1], -low.ci[0]))


def test_score_test_is_calibrated_at_the_margin_in_a_seeded_simulation() -> None:
    rng = np.random.default_rng(20240501)
    m, n = -0.05, 500
    pb, pc = 0.0725, 0.0225  # teacher 0.85, student 0.80: true delta exactly at the margin
    rejections = 0
    draws = 1500
    for _ in range(draws):
        both, b, c, neither = rng.multinomial(n, [0.85 - pb, pb, pc, 0.15 - pc])
        s, r = paired(both=both, b=b, c=c, neither=neither)
        result = hs.compare_test(
            student=s, reference=r, compare="teacher_delta", bound="min", threshold=m,
            binary=True,
        )
        assert result.p_value is not None
        rejections += result.p_value < 0.05
    assert 0.03 <= rejections / draws <= 0.065


# ---------------------------------------------------------------- bootstrap behaviour


def test_bootstrap_is_deterministic_under_the_seed() -> None:
    kwargs = dict(
        student=SCORES, reference=TEACHER_SCORES, compare="teacher_ratio", bound="min",
        threshold=0.95, binary=False,
    )
    first = hs.compare_test(**kwargs, seed=7)
    assert hs.compare_test(**kwargs, seed=7) == first
    other = hs.compare_test(**kwargs, seed=8)
    assert other != first
    assert other.value == first.value
    assert other.ci == pytest.approx(first.ci, abs=0.01)
    assert first.p_value is not None and other.p_value is not None
    assert abs(other.p_value - first.p_value) < 0.02
    assert first.method == "paired bootstrap (BCa), 2000 resamples, seed 7"


def test_custom_statistic_uses_the_same_resamples_as_the_mean() -> None:
    def statistic(idx: np.ndarray) -> tuple[float, float | None]:
        return float(SCORES[idx].mean()), float(TEACHER_SCORES[idx].mean())

    kwargs = dict(
        student=SCORES, reference=TEACHER_SCORES, compare="teacher_delta", bound="min",
        threshold=-0.045, binary=False, n_resamples=500,
    )
    by_mean = hs.compare_test(**kwargs)
    by_statistic = hs.compare_test(**kwargs, statistic=statistic)
    assert by_statistic.value == pytest.approx(by_mean.value)
    assert by_statistic.ci == pytest.approx(by_mean.ci)
    assert by_statistic.p_value == pytest.approx(by_mean.p_value)


def test_degenerate_inputs_do_not_crash() -> None:
    empty = hs.compare_test(
        student=[], reference=[], compare="teacher_ratio", bound="min", threshold=0.9,
        binary=True,
    )
    assert not empty.defined and not empty.testable and empty.p_value is None
    zero_reference = hs.compare_test(
        student=[1, 0, 1], reference=[0, 0, 0], compare="teacher_ratio", bound="min",
        threshold=0.9, binary=True,
    )
    assert not zero_reference.defined and zero_reference.p_value is None
    flat_breach = hs.compare_test(
        student=[0.5] * 8, reference=None, compare="value", bound="min", threshold=0.9,
        binary=False,
    )
    assert flat_breach.ci == (0.5, 0.5) and flat_breach.p_value is None
    flat_meets = hs.compare_test(
        student=[1, 1, 1], reference=[1, 1, 1], compare="teacher_ratio", bound="min",
        threshold=0.95, binary=True,
    )
    assert flat_meets.ci == (1.0, 1.0) and flat_meets.p_value == 1.0
    no_discordance = hs.compare_test(
        student=[1, 0, 1], reference=[1, 0, 1], compare="teacher_delta", bound="min",
        threshold=0.0, binary=True,
    )
    assert no_discordance.p_value == 1.0
    assert all(math.isfinite(x) for x in no_discordance.ci)
    single = hs.compare_test(
        student=[0.2], reference=[0.4], compare="baseline_delta", bound="min", threshold=0.0,
        binary=False,
    )
    assert single.ci == pytest.approx((-0.2, -0.2)) and single.p_value is None


def test_malformed_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="paired"):
        hs.compare_test(student=[1, 0], reference=[1], compare="teacher_delta", bound="min",
                        threshold=0.0, binary=True)
    with pytest.raises(ValueError, match="0 or 1"):
        hs.compare_test(student=[0.5], reference=None, compare="value", bound="min",
                        threshold=0.5, binary=True)
    with pytest.raises(ValueError, match="compare"):
        hs.compare_test(student=[1], reference=None, compare="ratio", bound="min",
                        threshold=0.5, binary=True)
    with pytest.raises(ValueError, match="bound"):
        hs.compare_test(student=[1], reference=None, compare="value", bound="lt",
                        threshold=0.5, binary=True)
    with pytest.raises(ValueError, match="reference"):
        hs.compare_test(student=[1], reference=None, compare="teacher_delta", bound="min",
                        threshold=0.5, binary=True)


# ---------------------------------------------------------------- verdicts through the gate


def verdict(result: hs.TestResult, *, min: float, strict: bool = False,
            severity: str = "fail", q_value: float | None = None) -> str:
    return decide(
        value=result.value if result.defined else None, min=min, max=None, n=result.n,
        min_support=30, severity=severity, p_value=result.p_value, q_value=q_value,
        testable=result.testable, strict=strict,
    )


def delta_check(*, both: int, b: int, c: int, neither: int, margin: float = 0.0) -> hs.TestResult:
    s, r = paired(both=both, b=b, c=c, neither=neither)
    return hs.compare_test(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=margin,
        binary=True,
    )


def test_each_verdict_is_reached_through_compare_test() -> None:
    meets = delta_check(both=80, b=3, c=5, neither=12)
    assert verdict(meets, min=0.0) == "pass"

    significant = delta_check(both=150, b=30, c=4, neither=16)
    assert significant.p_value is not None and significant.p_value < 0.05
    assert verdict(significant, min=0.0) == "fail"

    small = delta_check(both=12, b=6, c=0, neither=2)  # n = 20 < min_support 30
    assert verdict(small, min=0.0) == "inconclusive"
    assert verdict(small, min=0.0, strict=True) == "fail"

    unclear = delta_check(both=150, b=7, c=3, neither=40)  # p = P(X >= 7 | Bin(10, 1/2))
    assert unclear.p_value == pytest.approx(stats.binom.sf(6, 10, 0.5))
    assert verdict(unclear, min=0.0) == "inconclusive"
    assert verdict(unclear, min=0.0, strict=True) == "fail"

    assert verdict(significant, min=0.0, severity="warn") == "warn"

    undefined = hs.compare_test(
        student=[1, 0, 1], reference=[0, 0, 0], compare="teacher_ratio", bound="min",
        threshold=0.95, binary=True,
    )
    assert verdict(undefined, min=0.95) == "error"


def test_bh_family_can_turn_a_significant_slice_inconclusive() -> None:
    slices = [
        delta_check(both=150, b=12, c=3, neither=35),  # p ~ 0.018 alone
        delta_check(both=150, b=5, c=5, neither=40),
        delta_check(both=150, b=6, c=5, neither=39),
    ]
    p = [x.p_value for x in slices]
    q = hs.bh_adjust(p)
    assert p[0] is not None and p[0] < 0.05
    assert verdict(slices[0], min=0.0) == "fail"
    assert verdict(slices[0], min=0.0, q_value=q[0]) == "inconclusive"


# ---------------------------------------------------------------- needed examples


def test_needed_examples_would_decide_an_inconclusive_slice() -> None:
    # 100 examples, 7 lost and 2 gained against the teacher: delta -0.05, p ~ 0.09.
    s, r = paired(both=80, b=7, c=2, neither=11)
    check = hs.compare_test(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=0.0,
        binary=True,
    )
    assert verdict(check, min=0.0) == "inconclusive"
    needed = hs.needed_examples(
        student=s, reference=r, compare="teacher_delta", bound="min", threshold=0.0,
        binary=True,
    )
    # Connor's McNemar sample size: psi = 0.09, delta = -0.05.
    za, zb = stats.norm.ppf(0.95), stats.norm.ppf(0.8)
    expected = ((za * math.sqrt(0.09) + zb * math.sqrt(0.09 - 0.05**2)) / 0.05) ** 2
    assert needed == math.ceil(expected)
    assert needed is not None and needed > check.n

    # The same slice grown to `needed` examples, proportions kept, is decided.
    scale = needed / 100
    both, b, c = round(80 * scale), round(7 * scale), round(2 * scale)
    s_big, r_big = paired(both=both, b=b, c=c, neither=needed - both - b - c)
    grown = hs.compare_test(
        student=s_big, reference=r_big, compare="teacher_delta", bound="min", threshold=0.0,
        binary=True,
    )
    assert verdict(grown, min=0.0) == "fail"


def test_needed_examples_for_a_proportion_and_when_there_is_no_breach() -> None:
    s = outcomes(40, 50)  # 0.80 against a minimum of 0.85
    needed = hs.needed_examples(
        student=s, reference=None, compare="value", bound="min", threshold=0.85, binary=True
    )
    za, zb = stats.norm.ppf(0.95), stats.norm.ppf(0.8)
    expected = ((za * math.sqrt(0.85 * 0.15) + zb * math.sqrt(0.8 * 0.2)) / 0.05) ** 2
    assert needed == math.ceil(expected)
    assert hs.needed_examples(
        student=s, reference=None, compare="value", bound="min", threshold=0.75, binary=True
    ) is None
    assert hs.needed_examples(
        student=[0.5] * 5, reference=None, compare="value", bound="min", threshold=0.9,
        binary=False,
    ) is None


def test_needed_examples_for_a_bootstrapped_delta_is_the_normal_formula() -> None:
    needed = hs.needed_examples(
        student=SCORES, reference=TEACHER_SCORES, compare="teacher_delta", bound="min",
        threshold=-0.02, binary=False,
    )
    diff = SCORES - TEACHER_SCORES
    za, zb = stats.norm.ppf(0.95), stats.norm.ppf(0.8)
    expected = ((za + zb) * np.std(diff, ddof=1) / (diff.mean() + 0.02)) ** 2
    assert needed == math.ceil(expected)


# ---------------------------------------------------------------- one test behind CI and verdict
#
# For every test path: with level = (1 - confidence) / 2, a min check's threshold lies above
# the CI's upper end exactly when its p-value is below level (a max check: below the lower
# end). Thresholds within BOUNDARY of an end are left to the checks just inside and outside.

BOUNDARY = 1e-9


def _agrees(result: hs.TestResult, bound: str, threshold: float, level: float) -> bool | None:
    """Whether "outside the CI on the breach side" and "p < level" agree (None: at an end)."""
    low, high = result.ci
    end = high if bound == "min" else low
    if abs(threshold - end) < BOUNDARY:
        return None
    outside = threshold > high if bound == "min" else threshold < low
    assert result.p_value is not None
    return outside == (result.p_value < level)


def _tables() -> list[tuple[int, int, int]]:
    """(b, c, n): paired tables from 20 to 2000 pairs, few to many discordant pairs."""
    out = []
    for n in (20, 60, 200, 700, 2000):
        for fb, fc in ((0, 0), (0.05, 0), (0, 0.05), (0.1, 0.02), (0.02, 0.1), (0.15, 0.05),
                       (0.3, 0.3)):
            out.append((round(fb * n), round(fc * n), n))
        out.extend([(1, 0, n), (3, 1, n)])
    return out


MARGINS = (-0.2, -0.1, -0.05, -0.02, -0.01, 0.01, 0.02, 0.05, 0.1, 0.2)


def _delta(b: int, c: int, n: int, bound: str, margin: float, confidence: float = 0.95,
           compare: str = "teacher_delta") -> hs.TestResult:
    s, r = paired(both=n - b - c, b=b, c=c, neither=0)
    return hs.compare_test(student=s, reference=r, compare=compare, bound=bound,
                           threshold=margin, binary=True, confidence=confidence)


def test_tango_ci_excludes_the_margin_exactly_when_the_corrected_test_rejects() -> None:
    checked = 0
    for b, c, n in _tables():
        for bound in ("min", "max"):
            for margin in MARGINS:
                compare = "teacher_delta" if margin < 0 else "baseline_delta"
                result = _delta(b, c, n, bound, margin, compare=compare)
                agrees = _agrees(result, bound, margin, 0.025)
                assert agrees is not False, (b, c, n, bound, margin, result)
                checked += agrees is not None
            # just inside and just outside the end on the breach side
            low, high = _delta(b, c, n, bound, 0.5).ci
            end, outward = (high, 1.0) if bound == "min" else (low, -1.0)
            for step, significant in ((-1e-7, False), (1e-7, True)):
                margin = end + outward * step
                if not -1 < margin < 1 or abs(margin) < 1e-6:
                    continue
                p = _delta(b, c, n, bound, margin).p_value
                assert p is not None and (p < 0.025) is significant, (b, c, n, bound, margin, p)
    assert checked > 800


def test_mcnemar_ci_excludes_zero_exactly_when_the_exact_test_rejects() -> None:
    replaced = 0
    for confidence in (0.95, 0.995):
        level = (1 - confidence) / 2
        for b in range(0, 16):
            for c in (0, 1, 3):
                n = 100
                for bound in ("min", "max"):
                    result = _delta(b, c, n, bound, 0.0, confidence)
                    assert result.method.startswith("exact McNemar")
                    assert _agrees(result, bound, 0.0, level) is not False, (b, c, bound, result)
                score_low, score_high = hs._score_interval(b, c, n, confidence)
                low, high = result.ci
                replaced += (low, high) != pytest.approx((score_low, score_high))
    # the score interval alone disagrees with the exact test on some of these tables
    assert replaced > 0


def test_binomial_ci_excludes_the_threshold_exactly_when_the_exact_test_rejects() -> None:
    for n in (20, 1000):
        for k in sorted({0, 1, n // 10, n - 1, n}):
            s = outcomes(k, n)
            ends = hs.compare_test(student=s, reference=None, compare="value", bound="min",
                                   threshold=0.5, binary=True).ci
            thresholds = [x / 10 for x in range(-1, 12)]
            thresholds += [e + d for e in ends for d in (-1e-7, 1e-7)]
            for bound in ("min", "max"):
                for threshold in thresholds:
                    result = hs.compare_test(student=s, reference=None, compare="value",
                                             bound=bound, threshold=threshold, binary=True)
                    assert result.ci == ends
                    assert _agrees(result, bound, threshold, 0.025) is not False, (
                        n, k, bound, threshold, result)


@pytest.mark.parametrize(
    ("student", "reference", "compare", "binary"),
    [
        (SCORES, TEACHER_SCORES, "teacher_delta", False),
        (SCORES, None, "value", False),
        (*paired(both=150, b=24, c=8, neither=18), "teacher_ratio", True),
        (*paired(both=30, b=3, c=1, neither=6), "baseline_ratio", True),
    ],
    ids=["delta", "value", "ratio-200", "ratio-40"],
)
def test_bootstrap_ci_excludes_the_threshold_exactly_when_its_p_value_is_small(
    student, reference, compare, binary
) -> None:
    kwargs = dict(student=student, reference=reference, compare=compare, binary=binary,
                  seed=5, n_resamples=400)
    first = hs.compare_test(bound="min", threshold=0.0, **kwargs)
    low, high = first.ci
    width = high - low
    thresholds = list(np.linspace(low - width / 2, high + width / 2, 21))
    for end in (low, high):
        thresholds += [end, float(np.nextafter(end, -np.inf)), float(np.nextafter(end, np.inf))]
    for bound in ("min", "max"):
        for threshold in thresholds:
            result = hs.compare_test(bound=bound, threshold=float(threshold), **kwargs)
            assert result.ci == first.ci
            outside = threshold > high if bound == "min" else threshold < low
            assert result.p_value is not None
            assert outside == (result.p_value < 0.025), (bound, threshold, result)


def test_bootstrap_too_coarse_for_the_level_ends_at_the_extreme_replicate() -> None:
    # 100 resamples cannot give a p-value below 1/101, so at confidence 0.999 (level 0.0005)
    # no threshold is rejected: the ends are the extreme replicates, the documented exception
    kwargs = dict(student=SCORES, reference=TEACHER_SCORES, compare="teacher_delta",
                  binary=False, seed=1, n_resamples=100, confidence=0.999)
    result = hs.compare_test(bound="min", threshold=1.0, **kwargs)
    assert result.ci[1] < 1.0  # the threshold is beyond every replicate ...
    assert result.p_value == pytest.approx(1 / 101)  # ... and not significant at 0.0005
    # at 0.95 the same threshold is outside the interval and significant, as everywhere else
    wide = hs.compare_test(bound="min", threshold=1.0, **{**kwargs, "confidence": 0.95})
    assert wide.ci[1] <= result.ci[1] and wide.p_value is not None and wide.p_value < 0.025


def test_big_paired_binary_ratio_resamples_outcome_pair_counts() -> None:
    """From ``_PAIR_COUNTS_FROM`` pairs on, the bootstrap draws the four pair counts: the same
    distribution as resampling positions, so the interval agrees to the bootstrap's noise."""
    from harness import stats as st

    rng = np.random.default_rng(3)
    n = 20_000
    t = (rng.random(n) < 0.9).astype(float)
    s = np.where(rng.random(n) < 0.95, t, 1 - t)
    args = dict(student=s, reference=t, compare="teacher_ratio", bound="min", threshold=0.95,
                binary=True, confidence=0.9)
    positions = st.compare_test(**args)
    old = st._PAIR_COUNTS_FROM
    try:
        st._PAIR_COUNTS_FROM = n
        counts = st.compare_test(**args)
    finally:
        st._PAIR_COUNTS_FROM = old
    assert "outcome-pair counts" in counts.method and "counts" not in positions.method
    assert counts.value == positions.value
    assert np.allclose(counts.ci, positions.ci, atol=1e-3)
    assert counts.p_value is not None and positions.p_value is not None
    assert abs(counts.p_value - positions.p_value) < 0.02
