"""Statistics of checks: paired tests, confidence intervals, q-values and needed sample sizes.

Every check compares one quantity (the student's metric, or its difference or ratio to the
teacher's / the baseline's) with a threshold. :func:`compare_test` gives the point value, a
two-sided confidence interval and a **one-sided** p-value of the null hypothesis "the true
value meets the threshold", so that a small p-value is a significant breach. The tests are
paired: student and reference answer the same examples, in the same order.

Which test is used (``TestResult.method`` says it in words):

============================  ============================================================
binary ``value``              exact binomial test (``scipy.stats.binomtest``), Wilson CI
binary delta, margin 0        exact McNemar: binomial test on the discordant pairs;
                              CI by inverting Tango's score test
binary delta, margin ≠ 0      Tango's score test for a paired difference of proportions
                              with a non-inferiority margin, continuity- and skewness-
                              (Cornish–Fisher) corrected; CI by inverting Tango's test
binary ratio, anything else   seeded paired bootstrap (BCa), p-value by inverting the BCa
                              one-sided interval
============================  ============================================================

Pure numpy/scipy; deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

COMPARES = ("value", "teacher_delta", "teacher_ratio", "baseline_delta", "baseline_ratio")
BOUNDS = ("min", "max")

#: A metric that is not a mean of per-example values: given an array of example positions
#: (a bootstrap resample, or all positions), it returns (student metric, reference metric or None).
Statistic = Callable[[NDArray[np.intp]], tuple[float, float | None]]

# Bootstrap resamples are drawn in chunks of about this many indices, to bound memory.
_CHUNK_INDICES = 2_000_000
# Jackknife units used for the BCa acceleration of a custom statistic (delete-a-group beyond).
_JACKKNIFE_GROUPS = 200
# A bootstrap whose replicates are undefined (e.g. a zero reference in a ratio) more often
# than this gives no p-value.
_MAX_UNDEFINED_FRACTION = 0.1


@dataclass(frozen=True)
class TestResult:
    """The statistics of one check.

    ``value`` is NaN exactly when the compared quantity is undefined (no examples, or a ratio
    whose reference aggregate is 0); then ``ci`` is ``(nan, nan)``, ``p_value`` is None and
    ``testable`` is False, and the caller should report the check as an error
    (``gate.decide(value=None)``). Otherwise ``ci`` is finite and contains ``value``.
    """

    __test__ = False  # not a pytest test class, despite the name

    value: float  # point estimate of the compared quantity
    ci: tuple[float, float]  # two-sided CI at `confidence`
    # One-sided p-value of H0 "the true value meets the threshold" (small = significant
    # breach); None when it cannot be computed.
    p_value: float | None
    method: str  # the test in words, e.g. "exact McNemar, b=11 c=3 (margin 0)"
    n: int
    testable: bool = True

    @property
    def defined(self) -> bool:
        """Whether the compared quantity could be computed at all."""
        return math.isfinite(self.value)


# --------------------------------------------------------------------------------------
# public API


def compare_test(
    *,
    student: NDArray[np.floating] | Sequence[float],
    reference: NDArray[np.floating] | Sequence[float] | None,
    compare: str,
    bound: str,
    threshold: float,
    binary: bool,
    statistic: Statistic | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 2000,
) -> TestResult:
    """Point value, two-sided CI and one-sided p-value of one check on paired examples.

    ``student`` and ``reference`` are per-example values in the same example order;
    ``reference`` is None exactly when ``compare == "value"``. The compared quantity is the
    student aggregate ``s`` (``value``), ``s - r`` (``*_delta``) or ``s / r`` (``*_ratio``),
    where an aggregate is the mean of the per-example values, or what ``statistic`` returns
    for all positions when it is given (then the per-example arrays only fix ``n``, and the
    bootstrap is used whatever ``binary`` says). ``bound`` ``"min"`` breaches when the value
    is below ``threshold``, ``"max"`` when above; the p-value tests H0 "the true value meets
    the threshold" against the breach side, so a ``max`` p-value is the mirror image of a
    ``min`` one.

    ``binary`` declares the per-example values to be 0/1 (correctness, flips); it selects the
    exact binomial test (``value``), the exact McNemar test (delta with threshold 0) or
    Tango's score test (delta with another margin). Ratios and non-binary values use a
    seeded paired BCa bootstrap with ``n_resamples`` resamples. The result is a pure function
    of the inputs and ``seed``.

    Degenerate data never raises: no examples or an undefined ratio give a NaN value (see
    :class:`TestResult`); data without any variation give a point CI and a p-value of None
    when the point breaches (the data cannot tell) or 1.0 when it meets the threshold.
    Malformed arguments (unknown ``compare``/``bound``, mismatched lengths, non-finite or,
    with ``binary``, non-0/1 values) raise ``ValueError``.
    """
    s, r = _check_inputs(student, reference, compare, bound, confidence, binary)
    n = int(s.shape[0])
    kind = _kind(compare)
    if n == 0:
        return _undefined(n, "no examples")

    if statistic is not None:
        return _bootstrap_test(
            n=n,
            aggregate=_statistic_aggregate(statistic, kind),
            kind=kind,
            bound=bound,
            threshold=threshold,
            confidence=confidence,
            seed=seed,
            n_resamples=n_resamples,
            jackknife=None,
        )
    if binary and kind == "value":
        return _binomial_value_test(s, bound, threshold, confidence)
    if binary and kind == "delta":
        assert r is not None
        return _paired_proportion_test(s, r, bound, threshold, confidence)
    return _bootstrap_test(
        n=n,
        aggregate=_mean_aggregate(s, r, kind),
        kind=kind,
        bound=bound,
        threshold=threshold,
        confidence=confidence,
        seed=seed,
        n_resamples=n_resamples,
        jackknife=_mean_jackknife(s, r, kind),
    )


def bh_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg q-values, in the input order.

    The family is the entries that are not None (NaN counts as None): each gets its BH
    adjusted p-value within that family (``scipy.stats.false_discovery_control``, method
    ``bh``), each None stays None. Rejecting where ``q < alpha`` controls the false discovery
    rate of the family at ``alpha``. A p-value outside [0, 1] raises ``ValueError``.
    """
    positions = [
        i for i, p in enumerate(p_values) if p is not None and not math.isnan(float(p))
    ]
    out: list[float | None] = [None] * len(p_values)
    if not positions:
        return out
    family = np.array([float(p_values[i]) for i in positions])  # type: ignore[arg-type]
    if np.any((family < 0) | (family > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    adjusted = stats.false_discovery_control(family, method="bh")
    for i, q in zip(positions, np.atleast_1d(adjusted), strict=True):
        out[i] = float(q)
    return out


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` at two-sided ``confidence``.

    With ``n == 0`` there is no information and the interval is ``(0.0, 1.0)``.
    Raises ``ValueError`` unless ``0 <= k <= n`` and ``0 < confidence < 1``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k} n={n}")
    if n == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return (float(ci.low), float(ci.high))


def needed_examples(
    *,
    student: NDArray[np.floating] | Sequence[float],
    reference: NDArray[np.floating] | Sequence[float] | None,
    compare: str,
    bound: str,
    threshold: float,
    binary: bool,
    alpha: float = 0.05,
    power: float = 0.8,
    statistic: Statistic | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
) -> int | None:
    """Examples a slice would need for its observed breach to be significant.

    Returns the total number of paired examples ``N`` at which a one-sided test at ``alpha``
    would detect the observed effect (the point value's distance from the threshold) with
    probability ``power``, assuming the per-example distribution stays as observed. None
    when the point value does not breach, or when the effect or its variance cannot be
    estimated (no examples, no variation, undefined ratio). The formulas, with
    ``za = z(1 - alpha)``, ``zb = z(power)`` and ``d`` the observed value minus threshold:

    - binary ``value`` (one-sample proportion, observed ``p1`` vs threshold ``p0``):
      ``N = ((za*sqrt(p0(1-p0)) + zb*sqrt(p1(1-p1))) / d)**2``;
    - binary delta (McNemar / Tango, discordance rates ``pb`` = reference right & student
      wrong, ``pc`` = student right & reference wrong, margin ``m``):
      ``N = ((za*sqrt(v0) + zb*sqrt(v1)) / d)**2`` with ``v1 = pb + pc - (pc - pb)**2`` and
      ``v0`` the same variance under the restricted estimate at ``pc - pb = m``; for
      ``m = 0`` this is Connor's (1987) McNemar sample size, ``v0 = pb + pc``;
    - everything else: ``N = ((za + zb) * sigma / d)**2`` with ``sigma`` the per-example
      standard deviation of the estimate: ``sd(s)`` (value), ``sd(s - r)`` (delta), the
      delta-method ``sd((s - R*r) / mean(r))`` (ratio ``R``), or, with ``statistic``, the
      bootstrap standard error times ``sqrt(n)``.

    The count is for one test at ``alpha``; pass the Benjamini–Hochberg level when the
    check sits in a family.
    """
    s, r = _check_inputs(student, reference, compare, bound, 0.95, binary)
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be in (0, 1)")
    n = int(s.shape[0])
    kind = _kind(compare)
    if n == 0:
        return None
    za = float(stats.norm.ppf(1 - alpha))
    zb = float(stats.norm.ppf(power))

    if statistic is not None:
        value = _statistic_value(statistic, np.arange(n), kind)
        if not math.isfinite(value) or not _breaches(value, bound, threshold):
            return None
        reps = _bootstrap_replicates(
            n, _statistic_aggregate(statistic, kind), kind, seed, n_resamples
        )
        reps = reps[np.isfinite(reps)]
        if reps.size < 2:
            return None
        sigma = float(np.std(reps, ddof=1)) * math.sqrt(n)
        return _normal_n(za, zb, sigma, value - threshold)

    if binary and kind == "value":
        p1 = float(s.mean())
        p0 = min(max(float(threshold), 0.0), 1.0)
        if not _breaches(p1, bound, threshold) or p1 == p0:
            return None
        spread = za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))
        return _ceil_count((spread / (p1 - p0)) ** 2)

    if binary and kind == "delta":
        assert r is not None
        b, c = _discordant(s, r)
        d1 = (c - b) / n
        m = float(threshold)
        if not _breaches(d1, bound, m) or not -1 < m < 1:
            return None
        v1 = (b + c) / n - d1**2
        v0 = _restricted_variance(b / n, c / n, 1.0, m)
        if v0 <= 0 and v1 <= 0:
            return None
        spread = za * math.sqrt(max(v0, 0.0)) + zb * math.sqrt(max(v1, 0.0))
        return _ceil_count((spread / (d1 - m)) ** 2)

    value = _mean_value(s, r, kind)
    if not math.isfinite(value) or not _breaches(value, bound, threshold) or n < 2:
        return None
    if kind == "value":
        per_example = s
    elif kind == "delta":
        assert r is not None
        per_example = s - r
    else:
        assert r is not None
        per_example = (s - value * r) / float(r.mean())
    sigma = float(np.std(per_example, ddof=1))
    return _normal_n(za, zb, sigma, value - threshold)


# --------------------------------------------------------------------------------------
# input handling


def _kind(compare: str) -> str:
    if compare == "value":
        return "value"
    return "delta" if compare.endswith("_delta") else "ratio"


def _check_inputs(
    student: NDArray[np.floating] | Sequence[float],
    reference: NDArray[np.floating] | Sequence[float] | None,
    compare: str,
    bound: str,
    confidence: float,
    binary: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    if compare not in COMPARES:
        raise ValueError(f"compare must be one of {', '.join(COMPARES)}, got {compare!r}")
    if bound not in BOUNDS:
        raise ValueError(f"bound must be 'min' or 'max', got {bound!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    s = np.asarray(student, dtype=np.float64).reshape(-1)
    r: NDArray[np.float64] | None = None
    if compare == "value":
        if reference is not None:
            raise ValueError("compare 'value' takes no reference values")
    else:
        if reference is None:
            raise ValueError(f"compare {compare!r} needs reference values")
        r = np.asarray(reference, dtype=np.float64).reshape(-1)
        if r.shape != s.shape:
            raise ValueError(
                f"student and reference must be paired: {s.shape[0]} vs {r.shape[0]} values"
            )
    for name, arr in (("student", s), ("reference", r)):
        if arr is None:
            continue
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} values must be finite")
        if binary and not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"binary {name} values must be 0 or 1")
    return s, r


def _breaches(value: float, bound: str, threshold: float) -> bool:
    return value < threshold if bound == "min" else value > threshold


def _undefined(n: int, why: str) -> TestResult:
    nan = float("nan")
    return TestResult(value=nan, ci=(nan, nan), p_value=None, method=why, n=n, testable=False)


def _fmt(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------------------
# exact and score tests for 0/1 outcomes


def _binomial_value_test(
    s: NDArray[np.float64], bound: str, threshold: float, confidence: float
) -> TestResult:
    n = int(s.shape[0])
    k = int(s.sum())
    # A proportion's null "true value meets the threshold" is decided at the clipped
    # threshold: a min bound below 0 can never be breached, one above 1 always is.
    p0 = min(max(float(threshold), 0.0), 1.0)
    alternative = "less" if bound == "min" else "greater"
    p = float(stats.binomtest(k, n, p0, alternative=alternative).pvalue)
    low, high = wilson_interval(k, n, confidence)
    method = f"exact binomial, k={k} n={n} vs {_fmt(threshold)}"
    return TestResult(value=k / n, ci=(low, high), p_value=min(p, 1.0), method=method, n=n)


def _discordant(s: NDArray[np.float64], r: NDArray[np.float64]) -> tuple[int, int]:
    """(b, c): b = reference right & student wrong, c = student right & reference wrong."""
    b = int(np.count_nonzero((r == 1) & (s == 0)))
    c = int(np.count_nonzero((s == 1) & (r == 0)))
    return b, c


def _restricted_rate(pb: float, pc: float, total: float, m: float) -> float:
    """Restricted MLE of P(reference right, student wrong) given ``pc - pb = m``.

    ``pb``/``pc`` are discordant counts (or rates, with ``total`` 1). It is the root of
    Tango's (1998) quadratic ``2N t^2 + (-(b+c) + m(2N + b - c)) t - b m (1 - m) = 0``,
    derived from the multinomial likelihood of the paired 2x2 table.
    """
    a_ = 2.0 * total
    b_ = -(pb + pc) + m * (2.0 * total + pb - pc)
    c_ = -pb * m * (1.0 - m)
    disc = max(b_ * b_ - 4.0 * a_ * c_, 0.0)
    return (-b_ + math.sqrt(disc)) / (2.0 * a_)


def _restricted_variance(pb: float, pc: float, total: float, m: float) -> float:
    """Per-example variance of ``student - reference`` at the restricted MLE (delta = m)."""
    t = _restricted_rate(pb, pc, total, m)
    return 2.0 * t + m - m * m


def _tango_z(b: int, c: int, n: int, m: float, continuity: float = 0.0) -> float:
    """Tango's score statistic for H0 ``delta = m`` (delta = student - reference).

    ``continuity`` shrinks ``c - b - n m`` towards 0 by that much (a continuity correction).
    """
    numerator = c - b - n * m
    numerator = math.copysign(max(abs(numerator) - continuity, 0.0), numerator)
    if numerator == 0:
        return 0.0
    var = _restricted_variance(float(b), float(c), float(n), m)
    if var <= 0:
        return math.copysign(math.inf, numerator)
    return numerator / math.sqrt(n * var)


def _corrected_z(b: int, c: int, n: int, m: float) -> float:
    """Tango's score statistic, continuity- and skewness-corrected, for the p-value.

    The plain score test is slightly liberal at a non-zero margin (about 5.5-6% at a
    nominal 5% for a teacher near 0.85 and margin -0.05, in the simulation of
    benchmarks/gate_calibration.py), for two reasons that this corrects:

    - the discordant counts are skewed: under the null the per-example difference takes
      -1, 0, +1 with the restricted probabilities ``(t, 1 - 2t - m, t + m)``; its third
      central moment gives the skewness ``g`` of the standardised sum, and the
      Cornish–Fisher expansion ``P(Z <= z) ~ Phi(z - g/6 (z^2 - 1))`` accounts for it;
    - the counts are discrete: ``c - b - n m`` is shrunk by 1/2 towards 0 (as Yates does).

    Together they keep the size at or below nominal from 100 to 1,300 examples, for about
    one point of power. Beyond the expansion's turning point (|z| of 6 or more in
    practice) the skewness term is dropped.
    """
    z = _tango_z(b, c, n, m, continuity=0.5)
    if not math.isfinite(z):
        return z
    t = _restricted_rate(float(b), float(c), float(n), m)
    pb, pc = t, t + m
    var = 2.0 * t + m - m * m
    if var <= 0:
        return z
    mu3 = pc * (1 - m) ** 3 + pb * (-1 - m) ** 3 + (1 - pb - pc) * (-m) ** 3
    g = mu3 / (var**1.5 * math.sqrt(n))
    if g * z / 3 >= 1:  # past the turning point the expansion is no longer monotone
        return z
    return z - g / 6 * (z * z - 1)


def paired_proportion_p(b: int, c: int, n: int, margin: float) -> float:
    """One-sided p-value of "student - reference >= margin" for paired 0/1 outcomes.

    ``b``: pairs the reference gets right and the student wrong; ``c``: the reverse; ``n``:
    all pairs. Exact McNemar for a zero margin, the corrected Tango score test otherwise
    (the test :func:`compare_test` uses for binary deltas).
    """
    if n == 0:
        return 1.0
    if margin == 0:
        if b + c == 0:
            return 1.0
        return float(stats.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    if not -1 < margin < 1:
        return 0.0 if (c - b) / n < margin else 1.0
    return float(stats.norm.cdf(_corrected_z(b, c, n, margin)))


def _tango_interval(b: int, c: int, n: int, confidence: float) -> tuple[float, float]:
    """Score interval for the paired difference: the margins Tango's test does not reject."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    d = (c - b) / n
    eps = 1e-12
    lo_end, hi_end = -1.0 + eps, 1.0 - eps

    def root(f: Callable[[float], float], a: float, b_: float, fallback: float) -> float:
        fa, fb = f(a), f(b_)
        if fa == 0:
            return a
        if fb == 0:
            return b_
        if math.copysign(1.0, fa) == math.copysign(1.0, fb):
            return fallback
        return float(optimize.brentq(f, a, b_, xtol=1e-10))

    low = root(lambda m: _tango_z(b, c, n, m) - z, lo_end, d, -1.0) if d > lo_end else -1.0
    high = root(lambda m: _tango_z(b, c, n, m) + z, d, hi_end, 1.0) if d < hi_end else 1.0
    return (min(low, d), max(high, d))


def _paired_proportion_test(
    s: NDArray[np.float64],
    r: NDArray[np.float64],
    bound: str,
    threshold: float,
    confidence: float,
) -> TestResult:
    n = int(s.shape[0])
    b, c = _discordant(s, r)
    d = (c - b) / n
    m = float(threshold)
    ci = _tango_interval(b, c, n, confidence)
    p: float | None
    if m == 0:
        # Exact McNemar: given b + c discordant pairs, b ~ Binomial(b + c, 1/2) at the null
        # boundary; a min bound is breached by many b, a max bound by many c.
        discordant = b + c
        if discordant == 0:
            p = 1.0
        else:
            k = b if bound == "min" else c
            p = float(stats.binomtest(k, discordant, 0.5, alternative="greater").pvalue)
        method = f"exact McNemar, b={b} c={c} (margin 0)"
    elif not -1 < m < 1:
        # A difference of proportions lies in [-1, 1]: a margin outside is met or
        # breached with certainty.
        p = 0.0 if _breaches(d, bound, m) else 1.0
        method = f"paired difference, b={b} c={c} (margin {_fmt(m)} outside [-1, 1])"
    else:
        z = _corrected_z(b, c, n, m)
        p = float(stats.norm.cdf(z) if bound == "min" else stats.norm.sf(z))
        method = f"Tango score test (continuity+skew corrected), b={b} c={c} (margin {_fmt(m)})"
    return TestResult(value=d, ci=ci, p_value=p, method=method, n=n)


# --------------------------------------------------------------------------------------
# paired bootstrap

# An aggregate maps a (k, n) array of resampled positions to k student and k reference
# aggregates (the reference row is None for compare "value").
_Aggregate = Callable[
    [NDArray[np.intp]], tuple[NDArray[np.float64], NDArray[np.float64] | None]
]


def _combine(
    s: NDArray[np.float64], r: NDArray[np.float64] | None, kind: str
) -> NDArray[np.float64]:
    if kind == "value":
        return s
    assert r is not None
    if kind == "delta":
        return s - r
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(r != 0, s / np.where(r != 0, r, 1.0), np.nan)
    return np.asarray(out, dtype=np.float64)


def _mean_aggregate(
    s: NDArray[np.float64], r: NDArray[np.float64] | None, kind: str
) -> _Aggregate:
    def aggregate(
        idx: NDArray[np.intp],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        return s[idx].mean(axis=1), (None if r is None else r[idx].mean(axis=1))

    return aggregate


def _statistic_aggregate(statistic: Statistic, kind: str) -> _Aggregate:
    def aggregate(
        idx: NDArray[np.intp],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        rows = [statistic(row) for row in idx]
        s = np.array([float(a) for a, _ in rows], dtype=np.float64)
        if kind == "value":
            return s, None
        if any(b is None for _, b in rows):
            raise ValueError("statistic returned no reference metric for a comparison")
        r = np.array([float(b) for _, b in rows], dtype=np.float64)  # type: ignore[arg-type]
        return s, r

    return aggregate


def _statistic_value(statistic: Statistic, idx: NDArray[np.intp], kind: str) -> float:
    s, r = _statistic_aggregate(statistic, kind)(idx.reshape(1, -1))
    return float(_combine(s, r, kind)[0])


def _mean_value(s: NDArray[np.float64], r: NDArray[np.float64] | None, kind: str) -> float:
    sm = np.array([s.mean()])
    rm = None if r is None else np.array([r.mean()])
    return float(_combine(sm, rm, kind)[0])


def _mean_jackknife(
    s: NDArray[np.float64], r: NDArray[np.float64] | None, kind: str
) -> NDArray[np.float64] | None:
    """Leave-one-out values of the compared quantity, in closed form for means."""
    n = s.shape[0]
    if n < 2:
        return None
    s_loo = (s.sum() - s) / (n - 1)
    r_loo = None if r is None else (r.sum() - r) / (n - 1)
    return _combine(s_loo, r_loo, kind)


def _group_jackknife(
    n: int, aggregate: _Aggregate, kind: str, seed: int
) -> NDArray[np.float64] | None:
    """Delete-a-group jackknife values (leave-one-out when n is small)."""
    if n < 2:
        return None
    groups = min(n, _JACKKNIFE_GROUPS)
    order = np.random.default_rng([seed, 1]).permutation(n)
    labels = np.empty(n, dtype=np.intp)
    labels[order] = np.arange(n) % groups
    values = []
    for g in range(groups):
        keep = np.flatnonzero(labels != g).astype(np.intp)
        s, r = aggregate(keep.reshape(1, -1))
        values.append(float(_combine(s, r, kind)[0]))
    return np.array(values, dtype=np.float64)


def _bootstrap_replicates(
    n: int, aggregate: _Aggregate, kind: str, seed: int, n_resamples: int
) -> NDArray[np.float64]:
    """The compared quantity on ``n_resamples`` paired resamples (NaN where undefined).

    The resamples are drawn with ``np.random.default_rng(seed)`` in chunks whose size
    depends only on ``n``, so they are the same for the same seed whatever the statistic.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_INDICES // max(n, 1))
    out = np.empty(n_resamples, dtype=np.float64)
    done = 0
    while done < n_resamples:
        k = min(rows, n_resamples - done)
        idx = rng.integers(0, n, size=(k, n), dtype=np.intp)
        s, r = aggregate(idx)
        out[done : done + k] = _combine(s, r, kind)
        done += k
    return out


def _bootstrap_test(
    *,
    n: int,
    aggregate: _Aggregate,
    kind: str,
    bound: str,
    threshold: float,
    confidence: float,
    seed: int,
    n_resamples: int,
    jackknife: NDArray[np.float64] | None,
) -> TestResult:
    """Seeded paired BCa bootstrap of the compared quantity.

    Resampling is our own (``np.random.default_rng(seed)``) rather than
    ``scipy.stats.bootstrap``: the CI-inversion p-value needs the BCa bias correction and
    acceleration, which scipy computes but does not return, and custom metrics are
    functions of resampled positions rather than of resampled data arrays.
    """
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be at least 100, got {n_resamples}")
    all_positions = np.arange(n, dtype=np.intp).reshape(1, -1)
    s0, r0 = aggregate(all_positions)
    value = float(_combine(s0, r0, kind)[0])
    if not math.isfinite(value):
        return _undefined(n, f"{kind} undefined (reference aggregate 0)")
    reps = _bootstrap_replicates(n, aggregate, kind, seed, n_resamples)
    finite = np.isfinite(reps)
    undefined = int(n_resamples - np.count_nonzero(finite))
    reps = reps[finite]
    method = f"paired bootstrap (BCa), {n_resamples} resamples, seed {seed}"
    if undefined:
        method += f", {undefined} undefined resamples dropped"
    breach = _breaches(value, bound, threshold)
    if reps.size == 0 or undefined > _MAX_UNDEFINED_FRACTION * n_resamples:
        return TestResult(value, (value, value), None, method, n)
    if float(np.ptp(reps)) == 0.0:
        # No variation in the data: nothing to test against.
        p_flat = None if breach else 1.0
        return TestResult(value, (value, value), p_flat, method + ", no variation", n)

    if jackknife is None:
        jackknife = _group_jackknife(n, aggregate, kind, seed)
    z0, accel = _bca_constants(reps, value, jackknife)
    alpha2 = (1 - confidence) / 2
    levels = [_bca_level(z0, accel, float(stats.norm.ppf(q))) for q in (alpha2, 1 - alpha2)]
    low, high = (float(x) for x in np.quantile(reps, levels))
    ci = (min(low, value), max(high, value))
    p = _bca_p_value(reps, z0, accel, bound, threshold)
    return TestResult(value=value, ci=ci, p_value=p, method=method, n=n)


def _bca_constants(
    reps: NDArray[np.float64], value: float, jackknife: NDArray[np.float64] | None
) -> tuple[float, float]:
    """Bias correction ``z0`` (ties split) and acceleration ``a`` (from the jackknife)."""
    b = reps.size
    below = np.count_nonzero(reps < value) + 0.5 * np.count_nonzero(reps == value)
    share = min(max(below / b, 1 / (b + 1)), b / (b + 1))
    z0 = float(stats.norm.ppf(share))
    accel = 0.0
    if jackknife is not None:
        jack = jackknife[np.isfinite(jackknife)]
        if jack.size >= 2:
            dev = jack.mean() - jack
            ss = float(np.sum(dev**2))
            if ss > 0:
                accel = float(np.sum(dev**3)) / (6.0 * ss**1.5)
    return z0, accel


def _bca_level(z0: float, accel: float, z: float) -> float:
    """The bootstrap quantile level that BCa uses for a nominal normal quantile ``z``."""
    u = z0 + z
    denom = 1 - accel * u
    if denom <= 0:
        return 1.0 if u > 0 else 0.0
    return float(stats.norm.cdf(z0 + u / denom))


def _bca_p_value(
    reps: NDArray[np.float64], z0: float, accel: float, bound: str, threshold: float
) -> float:
    """One-sided p-value by inverting the BCa one-sided interval.

    For a ``min`` bound, the p-value is the alpha at which the upper one-sided BCa bound at
    ``1 - alpha`` equals the threshold: the test rejects "true value >= threshold" at every
    alpha above it. With ``z0 = a = 0`` this is the percentile p-value, the share of
    replicates that meet the threshold; a ``max`` bound mirrors it with the lower bound.
    The share carries the usual +1 so that the p-value is never below ``1/(B+1)``.
    """
    b = reps.size
    if bound == "min":
        meets = int(np.count_nonzero(reps >= threshold))
        g = 1.0 - (meets + 1) / (b + 1)  # bootstrap share strictly below the threshold
    else:
        meets = int(np.count_nonzero(reps <= threshold))
        g = (meets + 1) / (b + 1)  # bootstrap share at or below the threshold
    g = min(max(g, 1 / (b + 1)), b / (b + 1))
    w = float(stats.norm.ppf(g)) - z0
    denom = 1 + accel * w
    # Solve level(z) = g for the nominal z: z0 + u/(1 - a u) = ppf(g) with u = z0 + z.
    u = w / denom if denom > 0 else math.copysign(math.inf, w)
    z = u - z0
    p = float(stats.norm.sf(z)) if bound == "min" else float(stats.norm.cdf(z))
    return min(max(p, 1 / (b + 1)), 1.0)


# --------------------------------------------------------------------------------------
# sample sizes


def _ceil_count(x: float) -> int | None:
    if not math.isfinite(x) or x <= 0:
        return None
    return int(math.ceil(x - 1e-9))


def _normal_n(za: float, zb: float, sigma: float, effect: float) -> int | None:
    if not sigma > 0 or effect == 0:
        return None
    return _ceil_count(((za + zb) * sigma / effect) ** 2)
