"""Traffic: does the suite still describe what users send?

``traffic_data`` is a sample of recent production inputs without labels. This module holds
the pure statistics that compare it with the eval data (DESIGN "Traffic and drift"):

- :func:`feature_drift` — per feature, a ``shift`` entry (chi-square on the eval-vs-traffic
  count table for categorical features, two-sample Kolmogorov–Smirnov for numeric ones;
  the population stability index, PSI, as the effect size; Benjamini–Hochberg across the
  features) and ``unseen`` entries (values traffic has that the eval data never saw, with
  their traffic share);
- :func:`uncovered_traffic` — traffic rows far from every eval row, in the embedding space
  :mod:`harness.coverage` already uses for distillation gaps (an ``uncovered`` entry);
- :func:`drift_gaps` — the flagged entries as coverage gaps of kind ``drift``;
- :func:`analyse` — all of it in one call, as a :class:`TrafficAnalysis` (the report's
  ``traffic`` block).

Everything here is plain numpy / scipy; nothing reads pytest or a spec, nothing imports torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from harness.coverage import EmbeddingCoverage, embedding_coverage
from harness.errors import DataError
from harness.lazy import LazyModule
from harness.memo import memoized, plain_parts
from harness.naming import format_value, predicate_name
from harness.report.numbers import general, share
from harness.results import CoverageGap, Pocket, Predicate
from harness.stats import bh_adjust

stats: Any = LazyModule("scipy.stats")  # imported when a drift test runs
# Drift tests are pure functions of their arguments: a warm run reads them back (harness.memo).
_MEMO: dict[str, Any] = {"folder": "traffic",
                         "modules": ("harness.traffic", "harness.stats", "harness.naming",
                                     "harness.report.numbers"),
                         "dists": ("numpy", "scipy"), "parts": plain_parts}

if TYPE_CHECKING:
    from harness.gate import GateInputs
    from harness.models.runs import ModelRun
    from harness.prepared import PreparedSuite

__all__ = [
    "DRIFT_KINDS",
    "MIN_PSI",
    "PSI_BINS",
    "PSI_FLOOR",
    "Drift",
    "TrafficAnalysis",
    "analyse",
    "drift_gaps",
    "feature_drift",
    "psi",
    "uncovered_traffic",
]

DRIFT_KINDS = ("shift", "unseen", "uncovered")

# PSI >= 0.1 is the usual "moderate shift" convention (0.25: "major"). With 100k traffic rows
# a chi-square or KS test finds a shift of a fraction of a percent; the effect floor keeps
# such shifts, real but harmless, from being reported as gaps.
MIN_PSI = 0.1
# Each bin's share is floored at this before the log, PSI's usual guard against log(0) for a
# bin one side leaves empty (a value the suite never saw contributes about share * ln(share/1e-4)).
PSI_FLOOR = 1e-4
PSI_BINS = 10  # numeric features: deciles of the eval values
# Cochran's rule for the chi-square approximation: categories whose expected count is below
# this in either row are pooled into one column before the test.
_MIN_EXPECTED = 5.0
_TOP_MOVES = 3
_MAX_IDS = 5

_MISSING_KEY = (2, "missing")  # the key of a missing value (None, NaN) among the categories


@dataclass(frozen=True)
class Drift:
    """One difference between the eval data and traffic: a report ``traffic.drift`` entry.

    ``kind`` is ``shift`` (a feature's distribution moved), ``unseen`` (a value traffic has
    and the eval data never saw) or ``uncovered`` (traffic rows far from every eval row).
    ``statistic`` is the test statistic (chi-square, KS ``D``) for a shift, the traffic
    share for ``unseen`` and ``uncovered``. ``p_value`` is None for ``unseen``: a value the
    suite has none of is a count, not an estimate. ``flagged`` (``gap`` in the report) says
    whether the entry is a coverage gap of kind ``drift`` (see :func:`drift_gaps`): for a
    shift, ``q_value < alpha`` and ``psi >= min_psi``; ``unseen`` entries are only made when they are gaps.
    """

    feature: str
    kind: str
    statistic: float | None
    p_value: float | None
    detail: str
    flagged: bool = False
    q_value: float | None = None
    psi: float | None = None
    test: str | None = None
    share: float | None = None
    value: Any = None
    n: int | None = None  # traffic rows concerned
    eval_n: int | None = None  # eval rows of the feature (with the value, for ``unseen``)
    needed: int | None = None  # eval examples that would match traffic's share (``unseen``)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"drift kind must be one of {DRIFT_KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """DESIGN's drift entry (``feature``, ``kind``, ``statistic``, ``p_value``,
        ``detail``), then the optional fields that are set."""
        d: dict[str, Any] = {
            "feature": self.feature,
            "kind": self.kind,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "detail": self.detail,
            "gap": self.flagged,
        }
        optional = {
            "q_value": self.q_value,
            "psi": self.psi,
            "test": self.test,
            "share": self.share,
            "n": self.n,
            "eval_n": self.eval_n,
            "needed": self.needed,
        }
        d.update({k: v for k, v in optional.items() if v is not None})
        if self.kind == "unseen":
            d["value"] = self.value
        d.update(self.extra)
        return d


# ----------------------------------------------------------------------------- helpers


def psi(expected_counts: ArrayLike, actual_counts: ArrayLike, *, floor: float = PSI_FLOOR) -> float:
    """Population stability index of ``actual`` against ``expected`` over the same bins.

    ``sum((a_i - e_i) * ln(a_i / e_i))`` over the bins' shares, each share floored at
    ``floor`` first. 0 for identical mixes; 0.1 is a moderate shift, 0.25 a major one.
    """
    e = np.asarray(expected_counts, dtype=float)
    a = np.asarray(actual_counts, dtype=float)
    if e.shape != a.shape or e.ndim != 1:
        raise ValueError(f"psi needs two count vectors of one length, got {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    pe = np.maximum(e / e.sum(), floor)
    pa = np.maximum(a / a.sum(), floor)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _column_kind(col: np.ndarray) -> str:
    """``numeric`` (int/float dtype), ``empty`` (no present value at all) or ``categorical``."""
    if col.dtype.kind in "iuf":
        return "numeric"
    if col.dtype.kind == "O" and all(_is_missing(_native(v)) for v in col):
        return "empty"
    return "categorical"


def _category_counts(col: np.ndarray) -> dict[tuple[int, Any], int]:
    """Counts per category key ``(0, value)`` / ``(1, bool)``; missing values under one key.

    Booleans get their own tag so that ``True`` and ``1`` stay two categories.
    """
    values = col.tolist()  # numpy scalars become Python ones
    # Counted with their type: a plain Counter would merge True with 1 (equal hashes).
    try:
        raw = Counter(zip(map(type, values), values, strict=True))
    except TypeError:  # an unhashable value (a list): count it by how a slice name writes it
        raw = Counter((type(v), v if _hashable(v) else format_value(v)) for v in values)
    out: dict[tuple[int, Any], int] = {}
    for (_, v), c in raw.items():
        if _is_missing(v):
            key: tuple[int, Any] = _MISSING_KEY
        elif isinstance(v, bool):
            key = (1, v)
        else:
            key = (0, v)
        out[key] = out.get(key, 0) + c
    return out


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _key_order(key: tuple[int, Any]) -> tuple[int, str, str]:
    return (key[0], type(key[1]).__name__, format_value(key[1]))


def _key_name(key: tuple[int, Any]) -> str:
    return "(missing)" if key == _MISSING_KEY else format_value(key[1])


def _stat_label(test: str) -> str:
    """How a shift's statistic is named in a detail: ``KS D``, ``chi-square``."""
    if test.startswith("ks"):
        return "KS D"
    return "chi-square"


@dataclass
class _Tested:
    """A feature's shift test before BH."""

    feature: str
    statistic: float | None
    p_value: float | None
    psi: float
    test: str
    n: int
    eval_n: int
    summary: str
    unseen: list[Drift]


# ------------------------------------------------------------------------ categorical


def _categorical(
    feature: str,
    ecol: np.ndarray,
    tcol: np.ndarray,
    *,
    min_share: float,
    min_count: int,
    max_unseen: int,
    floor: float,
) -> _Tested:
    e_counts, t_counts = _category_counts(ecol), _category_counts(tcol)
    keys = sorted(set(e_counts) | set(t_counts), key=_key_order)
    e = np.array([e_counts.get(k, 0) for k in keys], dtype=float)
    t = np.array([t_counts.get(k, 0) for k in keys], dtype=float)
    n_e, n_t = int(e.sum()), int(t.sum())

    statistic: float | None
    p_value: float | None
    if n_e == 0 or n_t == 0:
        statistic = p_value = None
    elif len(keys) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        table = _pool_rare(np.vstack([e, t]))
        # Yates' continuity correction applies (scipy's default) when the table is 2 x 2.
        res = stats.chi2_contingency(table)
        statistic, p_value = float(res.statistic), float(res.pvalue)
    effect = psi(e, t, floor=floor)

    pe = e / n_e if n_e else np.zeros_like(e)
    pt = t / n_t if n_t else np.zeros_like(t)
    moves = sorted(range(len(keys)), key=lambda i: (-abs(pt[i] - pe[i]), _key_order(keys[i])))
    shown = [
        f"{_key_name(keys[i])} {share(pe[i])} → {share(pt[i])}"
        for i in moves[:_TOP_MOVES]
        if pt[i] != pe[i]
    ]
    summary = "suite → traffic: " + ", ".join(shown) if shown else "the same mix in suite and traffic"

    unseen: list[Drift] = []
    new = [
        i
        for i, k in enumerate(keys)
        if k != _MISSING_KEY and e[i] == 0 and t[i] > 0 and (pt[i] >= min_share or t[i] >= min_count)
    ]
    new.sort(key=lambda i: (-t[i], _key_order(keys[i])))
    for i in new[:max_unseen]:
        value = keys[i][1]
        portion = float(t[i] / len(tcol))
        name = predicate_name([Predicate(feature, "eq", value)])
        needed = max(1, math.ceil(portion * len(ecol)))
        detail = (
            f"{share(portion)} of traffic is {name} ({int(t[i])} of {len(tcol)} rows); the suite has "
            f"none — add about {needed} {name} examples to match traffic's share"
        )
        unseen.append(
            Drift(
                feature=feature,
                kind="unseen",
                statistic=portion,
                p_value=None,
                detail=detail,
                flagged=True,
                test="unseen value",
                share=portion,
                value=value,
                n=int(t[i]),
                eval_n=0,
                needed=needed,
            )
        )
    if len(new) > max_unseen:
        rest = sum(int(t[i]) for i in new[max_unseen:])
        summary += f"; {len(new) - max_unseen} more unseen values cover {rest} traffic rows"
    test = "chi-square" + (" (Yates)" if len(keys) == 2 else "")
    return _Tested(feature, statistic, p_value, effect, test, n_t, n_e, summary, unseen)


def _pool_rare(table: np.ndarray) -> np.ndarray:
    """The count table with columns of expected count < 5 (either row) pooled into one.

    Pooling is skipped when it would leave fewer than two columns: a poor approximation is
    still better than no test.
    """
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    rare = expected.min(axis=0) < _MIN_EXPECTED
    if rare.sum() < 2 or (~rare).sum() + 1 < 2:
        return table
    pooled = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    return pooled


# ----------------------------------------------------------------------------- numeric


def _numeric(feature: str, ecol: np.ndarray, tcol: np.ndarray, *, bins: int, floor: float) -> _Tested:
    ev = np.asarray(ecol, dtype=float)
    tv = np.asarray(tcol, dtype=float)
    e_present, t_present = ev[~np.isnan(ev)], tv[~np.isnan(tv)]
    e_miss, t_miss = len(ev) - len(e_present), len(tv) - len(t_present)

    tests: list[tuple[str, float, float]] = []
    if len(e_present) and len(t_present):
        res = stats.ks_2samp(e_present, t_present)
        tests.append(("ks", float(res.statistic), float(res.pvalue)))
    if (e_miss or t_miss) and (len(e_present) or len(t_present)) and len(ev) and len(tv):
        # Missingness is drift too (a field no longer filled in); KS sees only present values.
        res2 = stats.chi2_contingency([[e_miss, len(e_present)], [t_miss, len(t_present)]])
        tests.append(("missing", float(res2.statistic), float(res2.pvalue)))

    statistic: float | None = None
    p_value: float | None = None
    test = "ks"
    if tests:
        statistic = tests[0][1]
        # Bonferroni over the feature's two tests keeps one p-value per feature for BH.
        p_value = min(1.0, len(tests) * min(p for _, _, p in tests))
        test = "+".join(name for name, _, _ in tests)

    edges = (
        np.unique(np.quantile(e_present, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        if len(e_present)
        else np.empty(0)
    )
    e_bins = np.bincount(np.searchsorted(edges, e_present, side="right"), minlength=len(edges) + 1)
    t_bins = np.bincount(np.searchsorted(edges, t_present, side="right"), minlength=len(edges) + 1)
    if e_miss or t_miss:
        e_bins = np.append(e_bins, e_miss)
        t_bins = np.append(t_bins, t_miss)
    effect = psi(e_bins, t_bins, floor=floor)

    parts: list[str] = []
    if len(e_present) and len(t_present):
        e_med, t_med = float(np.median(e_present)), float(np.median(t_present))
        parts.append(f"median {general(e_med)} in the suite, {general(t_med)} in traffic")
        hi = float(np.quantile(e_present, 0.9))
        lo = float(np.quantile(e_present, 0.1))
        above = float(np.mean(t_present > hi)) * len(t_present) / len(tv)
        below = float(np.mean(t_present < lo)) * len(t_present) / len(tv)
        if above >= below:
            parts.append(f"{share(above)} of traffic above the suite's 90th percentile ({general(hi)})")
        else:
            parts.append(f"{share(below)} of traffic below the suite's 10th percentile ({general(lo)})")
    if e_miss or t_miss:
        parts.append(
            f"missing in {share(e_miss / len(ev) if len(ev) else 0.0)} of the suite, "
            f"{share(t_miss / len(tv) if len(tv) else 0.0)} of traffic"
        )
    summary = "; ".join(parts) if parts else "no values to compare"
    return _Tested(feature, statistic, p_value, effect, test, len(tv), len(ev), summary, [])


# ----------------------------------------------------------------------------- drift


def _drifts_to_json(drifts: list[Drift]) -> list[dict[str, Any]]:
    return [asdict(d) for d in drifts]


@memoized("traffic.feature_drift", 1, **_MEMO, encode=_drifts_to_json,
          decode=lambda docs: [Drift(**d) for d in docs])
def feature_drift(
    eval_features: Mapping[str, np.ndarray],
    traffic_features: Mapping[str, np.ndarray],
    *,
    alpha: float = 0.05,
    min_psi: float = MIN_PSI,
    min_share: float = 0.01,
    min_count: int = 30,
    max_unseen: int = 10,
    bins: int = PSI_BINS,
    floor: float = PSI_FLOOR,
) -> list[Drift]:
    """Per-feature drift between the eval data and traffic.

    Every feature of ``eval_features`` gets one ``shift`` entry (unless neither side has
    a value): numeric columns (int / float dtype, NaN missing) a two-sample KS test on the
    present values (``scipy.stats.ks_2samp``; ``statistic`` is ``D``), plus, when either
    side has missing values, a chi-square test of the missing rates, the two combined by
    Bonferroni; categorical columns (object / bool / str; ``None`` and NaN are one
    "missing" category) a chi-square test on the 2 × k eval-vs-traffic count table over
    the union of their categories (``scipy.stats.chi2_contingency``, categories expected
    fewer than 5 times pooled; ``statistic`` is chi-square). An object column with no
    present value takes the kind of the other side.

    ``psi`` is the effect size: over the eval deciles (``bins`` quantile bins of the eval
    values, plus a missing bin when either side has missing values) for numbers, over the
    categories for categories, each share floored at ``floor``. ``q_value`` is the BH
    adjustment across the features' p-values (:func:`harness.stats.bh_adjust`). A shift
    is a *gap* when ``q_value < alpha`` and ``psi >= min_psi``: the PSI floor keeps large
    traffic samples from flagging shifts too small to matter.

    ``unseen`` entries: each non-missing category traffic has and the eval data lacks,
    with its share of the traffic rows, when that share is at least ``min_share`` or its
    count at least ``min_count``; at most ``max_unseen`` per feature, largest first.
    Features traffic has and the eval data lacks are ignored (nothing to compare with).

    Raises :class:`DataError` when a feature of the eval data is absent from traffic
    (``traffic_data`` has the same keys as ``data``) or numeric on one side and
    categorical on the other. Order: features in ``eval_features`` order, each shift
    followed by its unseen values.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_psi < 0:
        raise ValueError(f"min_psi must be non-negative, got {min_psi}")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    missing = [name for name in eval_features if name not in traffic_features]
    if missing:
        raise DataError(
            f"traffic_data has no feature {', '.join(repr(m) for m in missing)} that the eval data "
            f"has; traffic_data needs the same fields as data (it has: "
            f"{', '.join(sorted(traffic_features)) or 'none'})",
            field="traffic_data",
        )

    tested = [t for name, col in eval_features.items()
              if (t := _test_feature(name, col, traffic_features[name], bins=bins, floor=floor,
                                     min_share=min_share, min_count=min_count,
                                     max_unseen=max_unseen)) is not None]
    q_values = bh_adjust([t.p_value for t in tested])
    out: list[Drift] = []
    for t, q in zip(tested, q_values, strict=True):
        out.append(_shift(t, q, alpha=alpha, min_psi=min_psi))
        out.extend(t.unseen)
    return out


def _test_feature(name: str, ecol_in: np.ndarray, tcol_in: np.ndarray, *, bins: int,
                  floor: float, min_share: float, min_count: int, max_unseen: int
                  ) -> _Tested | None:
    """One feature's drift test (numeric or categorical); None when neither side has a value."""
    ecol, tcol = np.asarray(ecol_in), np.asarray(tcol_in)
    if ecol.ndim != 1 or tcol.ndim != 1:
        raise DataError(f"feature {name!r} must be one value per row", field="traffic_data")
    e_kind, t_kind = _column_kind(ecol), _column_kind(tcol)
    if e_kind == "empty" and t_kind == "empty":
        return None
    kind = t_kind if e_kind == "empty" else e_kind
    if e_kind != "empty" and t_kind != "empty" and e_kind != t_kind:
        sample = next((v for v in (tcol if t_kind == "categorical" else ecol).tolist()
                       if not _is_missing(v)), None)
        where = "traffic" if t_kind == "categorical" else "the eval data"
        raise DataError(
            f"feature {name!r} is {e_kind} in the eval data and {t_kind} in traffic_data "
            f"(e.g. {sample!r} in {where}); both sides need the same kind of value",
            field=f"traffic_data.{name}",
        )
    if kind == "numeric":
        ev = ecol if e_kind == "numeric" else np.full(len(ecol), np.nan)
        tv = tcol if t_kind == "numeric" else np.full(len(tcol), np.nan)
        return _numeric(name, ev, tv, bins=bins, floor=floor)
    return _categorical(name, ecol, tcol, min_share=min_share, min_count=min_count,
                        max_unseen=max_unseen, floor=floor)


def _shift(t: _Tested, q: float | None, *, alpha: float, min_psi: float) -> Drift:
    """The ``shift`` entry of one tested feature, flagged when significant and large enough."""
    is_gap = q is not None and q < alpha and t.psi >= min_psi
    if t.p_value is None:
        verdict = "cannot be tested (no values on one side)"
    elif is_gap:
        verdict = "traffic has moved away from the suite"
    elif q is not None and q < alpha:
        verdict = f"a real but small shift (PSI below {general(min_psi)})"
    else:
        verdict = "no shift the data can tell from noise"
    stat_text = "" if t.statistic is None else f"{_stat_label(t.test)} {general(t.statistic)}, "
    q_text = "" if q is None else f"q={general(q)}, "
    detail = f"{t.feature}: {verdict} ({stat_text}{q_text}PSI {t.psi:.3f}); {t.summary}"
    if is_gap:
        detail += "; re-sample the suite from recent traffic or add examples where traffic grew"
    return Drift(feature=t.feature, kind="shift", statistic=t.statistic, p_value=t.p_value,
                 detail=detail, flagged=is_gap, q_value=q, psi=t.psi, test=t.test, n=t.n,
                 eval_n=t.eval_n)


# --------------------------------------------------------------------------- uncovered


@memoized("traffic.fisher_greater", 1, **_MEMO)
def _fisher_greater(table: list[list[int]]) -> float:
    """The one-sided (greater) Fisher exact p-value of a 2 x 2 table."""
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def uncovered_traffic(
    eval_texts: Sequence[str],
    traffic_texts: Sequence[str],
    *,
    quantile: float = 0.95,
    seed: int = 0,
    eval_vectors: np.ndarray | None = None,
    traffic_vectors: np.ndarray | None = None,
    agreement: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_excess: float = 0.05,
    feature: str = "text",
) -> tuple[EmbeddingCoverage, Drift | None]:
    """Traffic rows far from every eval row, and whether there are more than chance gives.

    Runs :func:`harness.coverage.embedding_coverage` with the eval set as the reference
    (TF-IDF cosine, or ``eval_vectors`` / ``traffic_vectors`` given together): a traffic
    row is uncovered when its nearest eval row is farther than the ``quantile`` of the eval
    rows' own leave-one-out nearest-neighbour distances, so about ``1 - quantile`` of the
    eval set itself lies that far. The returned summary's ``uncovered_fraction`` is the
    traffic share, its ``clusters`` group the uncovered traffic rows (``ids``, default
    ``traffic-<row>``), and with ``agreement`` (per traffic row, 1 where student and
    teacher agree) each cluster's ``gap`` is its mean of ``agreement - 1``.

    The Drift (kind ``uncovered``, flagged) comes only when traffic's share exceeds
    the eval set's own ``1 - quantile`` by at least ``min_excess`` and a one-sided Fisher
    exact test of the two exceedance counts (traffic rows vs the eval rows the threshold
    was estimated on) gives ``p < alpha``; else None.
    """
    n_t = len(traffic_texts) if traffic_vectors is None else len(traffic_vectors)
    n_e = len(eval_texts) if eval_vectors is None else len(eval_vectors)
    if ids is None:
        ids = [f"traffic-{i}" for i in range(n_t)]
    gain = None
    if agreement is not None:
        agree = np.asarray(agreement, dtype=float)
        if agree.shape != (n_t,):
            raise DataError(f"agreement has shape {agree.shape}, expected ({n_t},)", field="traffic_data")
        gain = agree - 1.0
    if n_e < 2:
        raise DataError("uncovered traffic needs at least 2 eval rows to compare with", field="data")
    try:
        summary, _ = embedding_coverage(
            traffic_texts,
            eval_texts,
            gain=gain,
            ids=ids,
            eval_vectors=traffic_vectors,
            distill_vectors=eval_vectors,
            quantile=quantile,
            seed=seed,
        )
    except ValueError as exc:
        raise DataError(f"uncovered traffic: {exc}", field="traffic_data") from exc
    fraction = summary.uncovered_fraction
    expected = 1.0 - quantile
    # The threshold was the quantile of at most 5000 eval rows (coverage's leave-one-out
    # sample): by construction about (1 - quantile) of them lie beyond it.
    m = min(n_e, 5000)
    e_beyond = round(expected * m)
    k = summary.n_uncovered
    p = _fisher_greater([[k, n_t - k], [e_beyond, m - e_beyond]])
    if not (fraction - expected >= min_excess - 1e-12 and p < alpha):  # 1 - 0.95 is not 0.05
        return summary, None
    drift = Drift(
        feature=feature,
        kind="uncovered",
        statistic=fraction,
        p_value=p,
        detail=_uncovered_detail(summary, n_t, expected, p),
        flagged=True,
        test="fisher exceedance",
        share=fraction,
        n=k,
        eval_n=n_e,
        extra={"threshold": summary.threshold, "method": summary.method, "expected": expected},
    )
    return summary, drift


def _uncovered_detail(summary: EmbeddingCoverage, n_t: int, expected: float, p: float) -> str:
    """What an ``uncovered`` drift entry says: the share, the test, the largest group."""
    fraction, k = summary.uncovered_fraction, summary.n_uncovered
    detail = (
        f"{share(fraction)} of traffic ({k} of {n_t} rows) lies farther from every eval example than "
        f"the eval examples lie from each other ({share(expected)} expected; {summary.method}, "
        f"cosine distance > {summary.threshold:.3f}, Fisher p={general(p)})"
    )
    if summary.clusters:
        top = summary.clusters[0]
        what = ", ".join(top["terms"]) if top["terms"] else "no terms"
        detail += f"; largest group: {top['n']} rows ({what}), e.g. {', '.join(top['ids'][:_MAX_IDS])}"
        if top["gap"] is not None:
            detail += f", student–teacher agreement {1 + top['gap']:.2f} there"
            if summary.gap_covered is not None:
                detail += f" vs {1 + summary.gap_covered:.2f} on covered traffic"
    return detail + "; add eval examples like these rows"


# ------------------------------------------------------------------------------ gaps


def drift_gaps(drifts: Sequence[Drift]) -> list[CoverageGap]:
    """The entries that are gaps (``Drift.flagged``) as coverage gaps of kind ``drift``.

    ``slice``: the feature for a shift (``n_words``), the value's slice name for an unseen
    value (``lang=es``), ``uncovered traffic`` for uncovered rows. ``n``: the traffic rows
    concerned; ``needed``: for an unseen value, the eval examples that would hold it at
    traffic's share. ``detail`` is the drift's own; ``extra`` names the drift kind and the
    feature (and the unseen value). Order is the input order.
    """
    gaps: list[CoverageGap] = []
    for d in drifts:
        if not d.flagged:
            continue
        extra: dict[str, Any] = {"drift": d.kind, "feature": d.feature}
        if d.kind == "unseen":
            name = predicate_name([Predicate(d.feature, "eq", d.value)])
            extra["value"] = d.value
            extra["share"] = d.share
        elif d.kind == "uncovered":
            name = "uncovered traffic"
            extra["share"] = d.share
        else:
            name = d.feature
            extra["psi"] = d.psi
            extra["q_value"] = d.q_value
        gaps.append(
            CoverageGap(
                kind="drift",
                slice=name,
                n=int(d.n or 0),
                needed=d.needed,
                detail=d.detail,
                extra=extra,
            )
        )
    return gaps


# ---------------------------------------------------------------------------- analysis


@dataclass
class TrafficAnalysis:
    """Everything the traffic sample says without labels, for the report's ``traffic`` block.

    ``drifts`` holds every feature's shift entry (gap or not), the unseen values and the
    uncovered entry; ``uncovered`` the embedding summary (None without texts or vectors);
    ``pockets`` the traffic pockets a ``scope: traffic`` search found (filled in by the
    caller that ran the search); ``notes`` what could not be computed and why.
    """

    n: int
    agreement: float | None
    drifts: list[Drift]
    uncovered: EmbeddingCoverage | None = None
    pockets: list[Pocket] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gaps(self) -> list[CoverageGap]:
        """The drift entries that are gaps, as coverage gaps of kind ``drift``."""
        return drift_gaps(self.drifts)

    def to_dict(self) -> dict[str, Any]:
        """DESIGN's ``traffic`` block: ``n``, ``agreement``, ``drift`` (the entries that are
        gaps), ``pockets``; plus ``features`` (every feature's shift test),
        ``uncovered_fraction`` and ``notes``."""
        d: dict[str, Any] = {
            "n": self.n,
            "agreement": self.agreement,
            "drift": [x.to_dict() for x in self.drifts if x.flagged],
            "pockets": [p.to_dict() for p in self.pockets],
            "features": [x.to_dict() for x in self.drifts if x.kind == "shift"],
        }
        if self.uncovered is not None:
            d["uncovered_fraction"] = self.uncovered.uncovered_fraction
        if self.notes:
            d["notes"] = list(self.notes)
        return d


def analyse(
    eval_features: Mapping[str, np.ndarray],
    traffic_features: Mapping[str, np.ndarray],
    *,
    agreement: np.ndarray | None = None,
    eval_texts: Sequence[str] | None = None,
    traffic_texts: Sequence[str] | None = None,
    eval_vectors: np.ndarray | None = None,
    traffic_vectors: np.ndarray | None = None,
    traffic_ids: Sequence[str] | None = None,
    n_traffic: int | None = None,
    alpha: float = 0.05,
    min_psi: float = MIN_PSI,
    quantile: float = 0.95,
    seed: int = 0,
) -> TrafficAnalysis:
    """Drift of ``traffic_features`` from ``eval_features`` and uncovered traffic, in one call.

    :func:`feature_drift` on the features, then :func:`uncovered_traffic` when texts (or
    vectors) of both sides are given — a text set with no words to compare becomes a note,
    not an error. ``agreement`` (per traffic row, 1 where student and teacher agree, or a
    label-free per-row score in [0, 1]) gives the block's ``agreement`` (its mean) and each
    uncovered cluster's agreement. ``n_traffic`` is the number of traffic rows (else taken
    from a feature column, the ids, the texts or ``agreement``).
    """
    n = n_traffic
    for source in (*traffic_features.values(), traffic_ids, traffic_texts, agreement):
        if n is None and source is not None:
            n = len(source)
    n = int(n or 0)
    mean_agreement: float | None = None
    if agreement is not None:
        agree = np.asarray(agreement, dtype=float)
        if agree.shape != (n,):
            raise DataError(f"agreement has shape {agree.shape}, expected ({n},)", field="traffic_data")
        mean_agreement = float(agree.mean()) if n else None
    drifts = feature_drift(eval_features, traffic_features, alpha=alpha, min_psi=min_psi)
    notes: list[str] = []
    uncovered: EmbeddingCoverage | None = None
    have_vectors = eval_vectors is not None and traffic_vectors is not None
    have_texts = eval_texts is not None and traffic_texts is not None
    if have_vectors or have_texts:
        try:
            uncovered, drift = uncovered_traffic(
                list(eval_texts or ()),
                list(traffic_texts or ()),
                quantile=quantile,
                seed=seed,
                eval_vectors=eval_vectors if have_vectors else None,
                traffic_vectors=traffic_vectors if have_vectors else None,
                agreement=agreement,
                ids=traffic_ids,
                alpha=alpha,
            )
        except DataError as exc:
            notes.append(f"uncovered traffic not computed: {exc.detail}")
        else:
            if drift is not None:
                drifts.append(drift)
    else:
        notes.append("uncovered traffic not computed: no texts or vectors of both sides")
    return TrafficAnalysis(n=n, agreement=mean_agreement, drifts=drifts, uncovered=uncovered, notes=notes)


# --------------------------------------------------------------------------- the run's step

@dataclass(frozen=True)
class TrafficOutcome:
    """Drift between eval data and traffic, and the label-free gate inputs on the traffic rows.

    ``block`` is the report's ``traffic`` section but its ``pockets`` (the gate fills them in).
    """

    block: dict[str, Any]
    drift: tuple[CoverageGap, ...]
    inputs: GateInputs


def traffic_step(prep: PreparedSuite, teacher: ModelRun, student: ModelRun,
                 seed: int, strict: bool) -> TrafficOutcome | None:
    """Drift per feature and the inputs of ``scope: traffic`` checks (None without traffic)."""
    from harness.gate import TRAFFIC, GateInputs, traffic_slice
    from harness.metrics import get_metric
    from harness.outputs import EvalContext
    from harness.prepared import discovery_features

    if prep.traffic_data is None:
        return None
    assert teacher.traffic_outputs is not None and student.traffic_outputs is not None
    traffic, spec = prep.traffic_data, prep.spec
    ctx = EvalContext(labels=spec.labels, gold=None, teacher=teacher.traffic_outputs)
    slices = {TRAFFIC: np.arange(len(traffic)),
              **{traffic_slice(k): v for k, v in prep.traffic_slices.items() if k != "overall"}}
    inputs = GateInputs(
        ctx=ctx, student=student.traffic_outputs, slices=slices, ids=traffic.ids,
        features=discovery_features(spec, traffic), discovery=spec.discovery,
        seed=seed, strict=strict, whole=TRAFFIC)
    fidelity = get_metric(prep.task.label_free_metric)
    agreement = np.asarray(fidelity.per_example(ctx, student.traffic_outputs), dtype=float)
    data = prep.data
    features = [f for f in spec.data.features if f in data.features]
    missing = [f for f in features if f not in traffic.features]
    shared = [f for f in features if f in traffic.features]
    analysis = analyse(
        {f: data.features[f] for f in shared}, {f: traffic.features[f] for f in shared},
        agreement=agreement, eval_texts=data.texts(), traffic_texts=traffic.texts(),
        traffic_ids=list(traffic.ids), n_traffic=len(traffic), seed=seed)
    if missing:
        analysis.notes.insert(0, f"traffic_data lacks feature(s) {', '.join(missing)}: no drift "
                                 "test for them")
    # DESIGN's block (n, agreement, drift: the gaps found, pockets: filled in by the gate),
    # with every feature's test, the uncovered share and notes beside it.
    block: dict[str, Any] = {"metric": fidelity.name, **analysis.to_dict()}
    block["n"] = len(traffic)
    block["agreement"] = float(agreement.mean()) if len(agreement) else None
    return TrafficOutcome(block=block, drift=tuple(analysis.gaps), inputs=inputs)
