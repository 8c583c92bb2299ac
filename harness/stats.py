"""Statistics of checks: paired tests, confidence intervals, q-values and needed sample sizes.

Every check compares one quantity (the student's metric, or its difference or ratio to the
teacher's / the baseline's) with a threshold. :func:`compare_test` gives the point value, a
two-sided confidence interval and a **one-sided** p-value of the null hypothesis "the true
value meets the threshold", so that a small p-value is a significant breach. The tests are
paired: student and reference answer the same examples, in the same order.

Which test is used (``TestResult.method`` says it in words), the published method, and
where it was checked against a reference implementation:

=========================  ==================================  ===========================
check                      method                              checked against
=========================  ==================================  ===========================
binary ``value``           exact binomial test; CI             scipy.stats.binom tails;
                           Clopper–Pearson (1934), the         ``scipy.stats.binomtest(...)
                           inversion of that test              .proportion_ci("exact")``
binary delta, margin 0     exact McNemar (1947): binomial      scipy.stats.binom tails
                           test of the discordant pairs; CI
                           as for a non-zero margin, each end
                           that falls on the other side of 0
                           than the exact conditional
                           interval's replaced by that one's
                           (:func:`_exact_conditional_interval`)
binary delta, margin ≠ 0   SCAS, the skewness-corrected        R ratesci 1.1.0.9000
                           asymptotic score method for paired  ``scorepairci`` (RD,
                           proportions (Laud 2017; 2026):      ``skew=TRUE``, ``bcf=FALSE``,
                           Tango's (1998) score with a         ``cc=0.25``) on 344 tables,
                           continuity correction of 1/2 on     n 30–2,000: interval ends at
                           ``c - b - n m``, its skewness       90% and 95% within 1e-10,
                           equation solved exactly             one-sided p-values within
                           (:func:`_corrected_z`); CI the      1e-12 (tests/data/ratesci_*,
                           inversion of that same test         scripts/ratesci_reference.R)
ratio, non-binary, custom  seeded paired bootstrap, BCa        no external implementation
metric                     (Efron 1987); p-value by inverting  (scipy.stats.bootstrap gives
                           the BCa one-sided interval; CI the  no p-value); its inversion
                           order statistics where that         and seeding are tested
                           p-value crosses the level
=========================  ==================================  ===========================

The checks are in tests/unit/test_stats.py.

**One test behind each interval and its verdict.** The CI is the set of thresholds the
check's own one-sided test does not reject at ``(1 - confidence) / 2``, so for a check whose
``bound`` is ``min`` (``max``): the threshold lies above the CI's upper end (below its lower
end) exactly when ``p_value < (1 - confidence) / 2``. A rubric's ``confidence`` defaults to
``1 - 2 * alpha`` (0.90 for alpha 0.05; harness.spec), so the printed CI excludes the
threshold on the breach side exactly when the one-sided test rejects at ``alpha`` (before
Benjamini–Hochberg). The exceptions, all documented where they arise: a bootstrap whose
one-sided bound does not exist at that level (fewer than ``2 / (1 - confidence)``
resamples, or an extreme acceleration), and a bootstrap whose point value its own test
already rejects (a CI always contains the point value).

Pure numpy/scipy; deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.lazy import LazyModule
from harness.memo import memoized

stats: Any = LazyModule("scipy.stats")
optimize: Any = LazyModule("scipy.optimize")

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
# From this many paired 0/1 examples on, a bootstrap resample is drawn as the counts of the
# four (student, reference) outcome pairs (one multinomial draw: the same distribution as
# resampling positions, at O(1) instead of O(n) per resample). Below it positions are
# resampled, which is cheap there and keeps the figures of earlier runs unchanged.
_PAIR_COUNTS_FROM = 100_000


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
# public API: each a pure function of its arguments, kept in the run's memo (harness.memo)

#: Bump with a change of what a memoized result is that the code hash does not show.
_MEMO_VERSION = 1
_MEMO: dict[str, Any] = {"folder": "stats", "modules": ("harness.stats",),
                         "dists": ("numpy", "scipy")}


def _array(values: object) -> NDArray[np.float64] | None:
    """``values`` as the float array a memo key holds (None: not an array of numbers, which
    the function itself rejects with its own error)."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _paired_parts(a: Mapping[str, Any], *names: str) -> tuple[Any, ...] | None:
    """The memo key of a paired computation: the two arrays and the named parameters (None
    with a custom ``statistic``, a function, which is always computed)."""
    s = _array(a["student"])
    r = None if a["reference"] is None else _array(a["reference"])
    if a["statistic"] is not None or s is None or (a["reference"] is not None and r is None):
        return None
    return (s, r, *(a[n] for n in names))


def _test_to_json(t: TestResult) -> dict[str, object]:
    return {"value": t.value, "ci": list(t.ci), "p_value": t.p_value, "method": t.method,
            "n": t.n, "testable": t.testable}


def _test_from_json(d: Mapping[str, Any]) -> TestResult:
    low, high = d["ci"]
    p = d["p_value"]
    return TestResult(value=float(d["value"]), ci=(float(low), float(high)),
                      p_value=None if p is None else float(p), method=str(d["method"]),
                      n=int(d["n"]), testable=bool(d["testable"]))


@memoized("stats.compare_test", _MEMO_VERSION, **_MEMO,
          parts=lambda a: _paired_parts(a, "compare", "bound", "threshold", "binary",
                                        "confidence", "seed", "n_resamples"),
          encode=_test_to_json, decode=_test_from_json)
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
    exact binomial test (``value``), the exact McNemar test (delta with threshold 0) or the
    SCAS score test (delta with another margin). Ratios and non-binary values use a
    seeded paired BCa bootstrap with ``n_resamples`` resamples. The result is a pure function
    of the inputs and ``seed``. The CI inverts the same test as the p-value: ``threshold``
    lies outside it on the breach side exactly when ``p_value < (1 - confidence) / 2``
    (see the module docstring for the two bootstrap exceptions).

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
        pair_counts=(s, r) if binary and r is not None and n >= _PAIR_COUNTS_FROM else None,
    )


@memoized("stats.bh_adjust", _MEMO_VERSION, **_MEMO,
          parts=lambda a: ([None if p is None else float(p) for p in a["p_values"]],),
          decode=lambda v: [None if q is None else float(q) for q in v])
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


def breaches(value: float, *, min: float | None = None, max: float | None = None) -> bool:
    """Whether ``value`` lies outside the bounds ``[min, max]`` (either may be None).

    The one breach test of the harness (the gate, the statistics and the pocket search all
    use it): strictly below ``min`` or strictly above ``max``; a NaN value breaches nothing.
    """
    if min is not None and value < min:
        return True
    return max is not None and value > max


@memoized("stats.wilson_interval", _MEMO_VERSION, **_MEMO,
          parts=lambda a: (a["successes"], a["n"], a["confidence"]),
          encode=list, decode=lambda v: (float(v[0]), float(v[1])))
def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n`` at two-sided ``confidence``.

    The one Wilson interval of the harness (``scipy.stats.binomtest(...).proportion_ci``,
    method ``wilson``), for rates that are reported rather than tested. With ``n == 0``
    there is no information and the interval is ``(0.0, 1.0)``. Raises ``ValueError``
    unless ``0 <= successes <= n`` and ``0 < confidence < 1``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes} n={n}")
    if n == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return (float(ci.low), float(ci.high))


@memoized("stats.needed_examples", _MEMO_VERSION, **_MEMO,
          parts=lambda a: _paired_parts(a, "compare", "bound", "threshold", "binary", "alpha",
                                        "power", "seed", "n_resamples"),
          decode=lambda v: None if v is None else int(v))
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
    """:func:`breaches` for one ``bound`` (``"min"``/``"max"``) and its ``threshold``."""
    if bound == "min":
        return breaches(value, min=threshold)
    return breaches(value, max=threshold)


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
    # threshold: a min bound at or below 0 can never be breached; one above 1 always is
    # (no proportion meets it, so p = 0, as the interval, which lies in [0, 1], says).
    p0 = min(max(float(threshold), 0.0), 1.0)
    alternative = "less" if bound == "min" else "greater"
    test = stats.binomtest(k, n, p0, alternative=alternative)
    p = float(test.pvalue)
    if (bound == "min" and threshold > 1) or (bound == "max" and threshold < 0):
        p = 0.0
    # Clopper-Pearson is the inversion of this exact test: p < (1 - confidence)/2 exactly
    # when the threshold is outside the interval on the breach side.
    ci = _clopper_pearson(k, n, confidence)
    method = f"exact binomial, k={k} n={n} vs {_fmt(threshold)}"
    return TestResult(value=k / n, ci=ci, p_value=min(p, 1.0), method=method, n=n)


def _clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The two-sided Clopper–Pearson interval for ``k / n``: each end is the proportion
    whose exact one-sided binomial tail at ``k`` is ``(1 - confidence) / 2``.

    The beta-quantile form of ``binomtest(k, n).proportion_ci(method="exact")`` (which
    finds the same ends by root-finding, about ten times slower).
    """
    level = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(level, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - level, k + 1, n - k))
    return (low, high)


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


# The continuity correction of the paired score test, on the scale of ``c - b - n m``.
_CONTINUITY = 0.5


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
    """Laud's skewness-corrected asymptotic score (SCAS) statistic for H0 ``delta = m``.

    Tango's score statistic ``t`` with a continuity correction, and the skewness correction
    of Laud (2017; paired: Laud 2026) solved exactly: ``z`` is the root of
    ``z + g/6 (z^2 - 1) = t``, so that ``P(T <= t) ~ Phi(z)``. This is R ratesci's
    ``scorepair`` (contrast RD, ``skew=TRUE``, ``bcf=FALSE``, ``cc=0.25``, which it doubles
    to 1/2 for RD), checked against it in tests/unit/test_stats.py:

    - the continuity correction shrinks ``c - b - n m`` towards 0 by 1/2 (half of the
      Yates/Edwards correction of McNemar's test, which shrinks ``|c - b|`` by 1); where
      ``0 < |c - b - n m| < 1/2`` the statistic is 0, as in ratesci;
    - under the null the per-example difference takes -1, 0, +1 with the restricted
      probabilities ``(t, 1 - 2t - m, t + m)``; its third central moment gives the skewness
      ``g`` of the standardised sum. The root is taken on the branch through ``z = t`` at
      ``g = 0``, in the form ``2 (t + s) / (1 + sqrt(1 + 4 s (t + s)))`` with ``s = g/6``,
      which has no cancellation as ``g`` goes to 0. Where ``t`` lies beyond the quadratic's
      turning point (no real root) the statistic is the turning point ``-1 / (2 s)``, as in
      ratesci.

    Together they keep the size at or below nominal at a non-zero margin (the plain score
    test is slightly liberal there; see benchmarks/gate_calibration.py).
    """
    numerator = c - b - n * m
    if 0 < abs(numerator) < _CONTINUITY:
        return 0.0
    z = _tango_z(b, c, n, m, continuity=_CONTINUITY)
    if not math.isfinite(z):
        return z
    t = _restricted_rate(float(b), float(c), float(n), m)
    pb, pc = t, t + m
    var = 2.0 * t + m - m * m
    if var <= 0:
        return z
    mu3 = pc * (1 - m) ** 3 + pb * (-1 - m) ** 3 + (1 - pb - pc) * (-m) ** 3
    s = mu3 / (6.0 * var**1.5 * math.sqrt(n))
    disc = 1.0 + 4.0 * s * (z + s)
    if disc <= 0:
        return -1.0 / (2.0 * s)
    return 2.0 * (z + s) / (1.0 + math.sqrt(disc))


def paired_proportion_p(b: int, c: int, n: int, margin: float) -> float:
    """One-sided p-value of "student - reference >= margin" for paired 0/1 outcomes.

    ``b``: pairs the reference gets right and the student wrong; ``c``: the reverse; ``n``:
    all pairs. Exact McNemar for a zero margin, the SCAS score test otherwise
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


# Margins checked beyond the first root before it is accepted as the end: the corrected
# statistic is monotone in the margin except far out in the tails (|z| near 3 at 20
# examples), and the check makes the end the OUTERMOST margin the test does not reject.
_SCAN_POINTS = 16


def _score_interval(b: int, c: int, n: int, confidence: float) -> tuple[float, float]:
    """The margins the SCAS test (:func:`_corrected_z`) does not reject.

    Each end is where the corrected one-sided z equals the critical value at
    ``(1 - confidence) / 2``: the upper end ``U`` is the largest margin ``m`` whose p-value
    of "delta >= m" (``Phi(z)``) is at least that level, the lower end ``L`` the smallest
    whose p-value of "delta <= m" (``1 - Phi(z)``) is. So a ``min`` check at margin ``m``
    is significant at ``(1 - confidence) / 2`` exactly when ``m > U`` (a ``max`` check when
    ``m < L``), wherever the statistic is monotone in the margin (everywhere but the far
    tails of very small samples; the scan keeps the outermost crossing there).
    """
    zc = float(stats.norm.ppf(0.5 + confidence / 2))
    d = (c - b) / n
    eps = 1e-12

    def outermost(accept: Callable[[float], float], outer: float) -> float:
        """The margin farthest from ``d`` towards ``outer`` where ``accept(m) >= 0``."""
        if abs(outer - d) <= eps or accept(d) < 0:
            return d  # (the point value is never rejected; kept for safety)
        if accept(outer) >= 0:
            return math.copysign(1.0, outer)  # not rejected even at the edge of [-1, 1]
        inner = d
        while True:
            root = float(optimize.brentq(accept, inner, outer, xtol=1e-13))
            beyond = root + (outer - root) * np.linspace(0.0, 1.0, _SCAN_POINTS + 1)[1:-1]
            again = [float(m) for m in beyond if accept(float(m)) >= 0]
            if not again:
                return root
            inner = again[-1]

    low = outermost(lambda m: zc - _corrected_z(b, c, n, m), -1.0 + eps)
    high = outermost(lambda m: _corrected_z(b, c, n, m) + zc, 1.0 - eps)
    return (min(low, d), max(high, d))


def _exact_conditional_interval(
    b: int, c: int, n: int, confidence: float
) -> tuple[float, float]:
    """The exact McNemar test's interval for the paired difference, given ``b + c``.

    Clopper–Pearson for the student's share ``c / (b + c)`` of the discordant pairs (the
    inversion of the exact binomial test behind McNemar's), mapped to a difference with the
    observed discordance: ``delta = (b + c) / n * (2 * share - 1)``. It excludes 0 exactly
    when the exact McNemar test rejects; it ignores the variation of ``b + c``, so it is
    used only to settle on which side of 0 an end of the score interval falls.
    """
    discordant = b + c
    if discordant == 0:
        return (0.0, 0.0)
    low, high = _clopper_pearson(c, discordant, confidence)
    scale = discordant / n
    return (scale * (2 * low - 1), scale * (2 * high - 1))


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
    low, high = _score_interval(b, c, n, confidence)
    p: float | None
    if m == 0:
        # Exact McNemar: given b + c discordant pairs, b ~ Binomial(b + c, 1/2) at the null
        # boundary; a min bound is breached by many b, a max bound by many c. The score
        # interval and the exact test can disagree about 0 (the score test's half-unit
        # continuity shrink is more liberal, the exact tail far out lighter): an end on the
        # other side of 0 than the exact conditional interval's end is replaced by that
        # end, so 0 lies outside the interval exactly when the exact test rejects.
        x_low, x_high = _exact_conditional_interval(b, c, n, confidence)
        if (high < 0) != (x_high < 0):
            high = x_high
        if (low > 0) != (x_low > 0):
            low = x_low
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
        method = (f"SCAS score test (Tango, continuity and skewness corrected), b={b} c={c} "
                  f"(margin {_fmt(m)})")
    ci = (min(low, d), max(high, d))
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


def _pair_count_replicates(
    s: NDArray[np.float64], r: NDArray[np.float64], kind: str, seed: int, n_resamples: int
) -> NDArray[np.float64]:
    """Paired bootstrap replicates of 0/1 values, drawn as outcome-pair counts.

    Resampling ``n`` pairs with replacement makes the counts of the pairs (1, 1), (1, 0),
    (0, 1) and (0, 0) a multinomial draw with the observed shares, and the two means follow
    from the counts: the distribution of :func:`_bootstrap_replicates`, other draws.
    """
    n = s.shape[0]
    both = int(np.count_nonzero((s == 1) & (r == 1)))
    s_only = int(np.count_nonzero(s == 1)) - both
    r_only = int(np.count_nonzero(r == 1)) - both
    shares = np.array([both, s_only, r_only, n - both - s_only - r_only], dtype=np.float64) / n
    counts = np.random.default_rng([seed, 2]).multinomial(n, shares, size=n_resamples)
    s_mean = (counts[:, 0] + counts[:, 1]) / n
    r_mean = (counts[:, 0] + counts[:, 2]) / n
    return _combine(s_mean.astype(np.float64), r_mean.astype(np.float64), kind)


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
    pair_counts: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> TestResult:
    """Seeded paired BCa bootstrap of the compared quantity.

    With ``pair_counts`` (paired 0/1 values) the resamples are drawn by
    :func:`_pair_count_replicates`.

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
    if pair_counts is not None:
        reps = _pair_count_replicates(*pair_counts, kind, seed, n_resamples)
    else:
        reps = _bootstrap_replicates(n, aggregate, kind, seed, n_resamples)
    finite = np.isfinite(reps)
    undefined = int(n_resamples - np.count_nonzero(finite))
    reps = reps[finite]
    method = (f"paired bootstrap (BCa){' of outcome-pair counts' if pair_counts else ''}, "
              f"{n_resamples} resamples, seed {seed}")
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
    low, high = _bca_interval(reps, z0, accel, (1 - confidence) / 2)
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


def _bca_p_values(
    meets: NDArray[np.int64], b: int, z0: float, accel: float, bound: str
) -> NDArray[np.float64]:
    """The one-sided BCa p-value for each count of replicates that meet the threshold.

    ``meets`` counts the replicates ``>= threshold`` (``min``) or ``<= threshold``
    (``max``). For a ``min`` bound the p-value is the alpha at which the upper one-sided
    BCa bound at ``1 - alpha`` equals the threshold: the test rejects "true value >=
    threshold" at every alpha above it. With ``z0 = a = 0`` this is the percentile
    p-value, the share of replicates that meet the threshold; a ``max`` bound mirrors it
    with the lower bound. The share carries the usual +1 so that the p-value is never
    below ``1/(B+1)``. It does not decrease as ``meets`` grows.
    """
    m = np.asarray(meets, dtype=np.float64)
    if bound == "min":
        g = 1.0 - (m + 1) / (b + 1)  # bootstrap share strictly below the threshold
    else:
        g = (m + 1) / (b + 1)  # bootstrap share at or below the threshold
    g = np.clip(g, 1 / (b + 1), b / (b + 1))
    w = stats.norm.ppf(g) - z0
    denom = 1 + accel * w
    # Solve level(z) = g for the nominal z: z0 + u/(1 - a u) = ppf(g) with u = z0 + z.
    u = np.where(denom > 0, w / np.where(denom > 0, denom, 1.0), np.copysign(np.inf, w))
    z = u - z0
    p = stats.norm.sf(z) if bound == "min" else stats.norm.cdf(z)
    return np.asarray(np.clip(p, 1 / (b + 1), 1.0), dtype=np.float64)


def _bca_p_value(
    reps: NDArray[np.float64], z0: float, accel: float, bound: str, threshold: float
) -> float:
    """One-sided p-value by inverting the BCa one-sided interval (see :func:`_bca_p_values`)."""
    if bound == "min":
        meets = int(np.count_nonzero(reps >= threshold))
    else:
        meets = int(np.count_nonzero(reps <= threshold))
    return float(_bca_p_values(np.array([meets]), reps.size, z0, accel, bound)[0])


def _bca_interval(
    reps: NDArray[np.float64], z0: float, accel: float, level: float
) -> tuple[float, float]:
    """The thresholds the one-sided BCa p-values do not reject at ``level``.

    Built from the same p-value function as the verdict, so for a ``min`` check the
    threshold is above the upper end exactly when its p-value is below ``level`` (a ``max``
    check: below the lower end). The p-value depends on the threshold only through the
    count of replicates that meet it, and does not decrease with that count: the ``min``
    test rejects exactly when at most ``K`` replicates are ``>= threshold``, i.e. when the
    threshold is above the ``(K+1)``-th largest replicate, which is the upper end (the
    lower end mirrors it). Where no count is rejected (``level`` below ``1/(B+1)``, or an
    acceleration so large that BCa's one-sided bound does not exist) the end is the extreme
    replicate, and there alone a threshold beyond it is not significant.
    """
    b = reps.size
    ordered = np.sort(reps)
    counts = np.arange(b + 1)
    ends = []
    for bound in ("max", "min"):
        rejected = int(np.count_nonzero(_bca_p_values(counts, b, z0, accel, bound) < level))
        k = min(max(rejected - 1, 0), b - 1)  # rejected: meets <= rejected - 1
        ends.append(float(ordered[k] if bound == "max" else ordered[b - 1 - k]))
    return ends[0], ends[1]


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
