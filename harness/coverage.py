"""Coverage gaps: the places the data cannot vouch for.

Three kinds, as :class:`harness.results.CoverageGap` names them:

- ``support`` — a check the evaluation data is too small to decide
  (:func:`support_gaps`);
- ``distillation`` — a feature value, numeric range or declared slice that is present in the
  evaluation set but absent or rare in the data the student was distilled on
  (:func:`distillation_gaps`);
- ``embedding`` — a group of evaluation examples far from every distillation example in a
  vector space, TF-IDF by default (:func:`embedding_coverage`).

Everything here is plain numpy / scipy / scikit-learn; nothing reads pytest or a spec.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from harness.lazy import LazyModule
from harness.memo import memoized, plain_parts
from harness.naming import format_value, predicate_name
from harness.paths import display_path
from harness.report.numbers import general, percent
from harness.results import Check, CoverageGap, Predicate

if TYPE_CHECKING:
    import scipy.sparse as sp

    from harness.models import Model
    from harness.outputs import EvalContext, Outputs
    from harness.prepared import PreparedSuite

__all__ = [
    "EmbeddingCoverage",
    "distillation_gaps",
    "embedding_coverage",
    "support_gaps",
]

if not TYPE_CHECKING:  # scipy.sparse is needed only when coverage is computed, not read back
    sp = LazyModule("scipy.sparse")

# --------------------------------------------------------------------------- support gaps


def _min_support_of(check: Check, min_support: int | Mapping[str, int] | None) -> int | None:
    own = check.extra.get("min_support")
    if isinstance(own, int) and not isinstance(own, bool):
        return own
    if isinstance(min_support, Mapping):
        return min_support.get(check.criterion)
    return min_support


def _threshold_text(threshold: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {general(v)}" for k, v in sorted(threshold.items())) or "no threshold"


def support_gaps(
    checks: Sequence[Check], *, min_support: int | Mapping[str, int] | None = None
) -> list[CoverageGap]:
    """One ``support`` gap per slice whose data cannot decide one or more checks.

    A check counts when its verdict is ``inconclusive``, or when its support ``n`` is below
    its minimum support (``check.extra["min_support"]``, else ``min_support`` — one number,
    or a mapping criterion name → number) and its verdict is not ``error``. Checks on the same
    slice merge into one gap: ``n`` is the slice's support, ``needed`` the largest number of
    examples any of its checks needs (``check.needed``, at least the minimum support when
    that is what was missing), and ``detail`` names each undecided criterion and its margin.
    ``extra["criteria"]`` lists the criteria. Gaps come in the order their slices first
    appear in ``checks``.
    """
    order: list[str] = []
    by_slice: dict[str, list[tuple[Check, int | None, bool]]] = {}
    for check in checks:
        if check.verdict == "error":
            continue
        floor = _min_support_of(check, min_support)
        short = floor is not None and check.n < floor
        if check.verdict != "inconclusive" and not short:
            continue
        needed = check.needed
        if short and floor is not None:
            needed = floor if needed is None else max(needed, floor)
        if check.slice not in by_slice:
            order.append(check.slice)
            by_slice[check.slice] = []
        by_slice[check.slice].append((check, needed, short))

    gaps: list[CoverageGap] = []
    for name in order:
        entries = by_slice[name]
        n = max(c.n for c, _, _ in entries)
        known = [nd for _, nd, _ in entries if nd is not None]
        needed_max = max(known) if known else None
        parts: list[str] = []
        criteria: list[str] = []
        for check, needed, short in entries:
            if check.criterion not in criteria:
                criteria.append(check.criterion)
            what = f"{check.criterion} ({check.metric} {check.compare}, {_threshold_text(check.threshold)})"
            if check.value is not None:
                what += f": {general(check.value)}"
                if check.ci is not None:
                    what += f" [{general(check.ci[0])}, {general(check.ci[1])}]"
            reason = "below the minimum support" if short else "cannot tell the breach from noise"
            tail = (
                f"about {needed} examples would decide it"
                if needed is not None
                else ("no sample size would be enough at this effect")
            )
            parts.append(f"{what} — {reason}; {tail}")
        detail = f"{n} examples cannot decide " + "; ".join(parts)
        gaps.append(
            CoverageGap(
                kind="support",
                slice=name,
                n=int(n),
                needed=None if needed_max is None else int(needed_max),
                detail=detail,
                extra={"criteria": criteria},
            )
        )
    return gaps


# ---------------------------------------------------------------------- distillation gaps


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _numeric_column(col: np.ndarray) -> np.ndarray | None:
    """The column as floats (NaN for missing) when it is numeric, else None."""
    arr = np.asarray(col)
    if arr.dtype.kind in "iuf":
        return arr.astype(float)
    if arr.dtype.kind != "O":
        return None
    out = np.empty(len(arr), dtype=float)
    seen = False
    for i, v in enumerate(arr):
        if _is_missing(v):
            out[i] = np.nan
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out[i] = float(v)
            seen = True
        else:
            return None
    return out if seen else None


def _key(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _value_counts(col: np.ndarray) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for v in np.asarray(col, dtype=object):
        v = _key(v)
        if _is_missing(v):
            continue
        try:
            counts[v] = counts.get(v, 0) + 1
        except TypeError:  # an unhashable value (a list) is not a category
            continue
    return counts


def _sort_key(v: Any) -> tuple[str, str]:
    return (type(v).__name__, format_value(v))


def _as_mask(selection: np.ndarray, n: int | None) -> np.ndarray | None:
    """A boolean mask of the selection; None for an index array over a set of unknown size."""
    sel = np.asarray(selection)
    if sel.dtype == bool:
        return sel
    if n is None:
        return None
    mask = np.zeros(n, dtype=bool)
    mask[sel.astype(int)] = True
    return mask


def _set_size(features: Mapping[str, np.ndarray], slices: Mapping[str, np.ndarray]) -> int | None:
    for col in features.values():
        return len(col)
    for sel in slices.values():
        arr = np.asarray(sel)
        if arr.dtype == bool:
            return len(arr)
    if "overall" in slices:
        return len(slices["overall"])
    return None


def _distillation_gap(
    name: str,
    eval_n: int,
    eval_total: int,
    distill_n: int,
    distill_total: int,
    what: str,
    extra: Mapping[str, Any] | None = None,
) -> CoverageGap:
    eval_share = eval_n / eval_total if eval_total else 0.0
    distill_share = distill_n / distill_total if distill_total else 0.0
    if distill_n == 0:
        seen = "none in the distillation data"
    else:
        seen = f"only {distill_n} ({percent(distill_share)}) in the distillation data"
    detail = (
        f"{what}: {eval_n} eval examples ({percent(eval_share)}) but {seen}; "
        "the student was barely taught this part of the eval set"
    )
    ext: dict[str, Any] = {
        "distill_n": int(distill_n),
        "eval_share": float(eval_share),
        "distill_share": float(distill_share),
    }
    if extra:
        ext.update(extra)
    return CoverageGap(kind="distillation", slice=name, n=int(eval_n), detail=detail, extra=ext)


def _is_rare(eval_share: float, distill_share: float, rare_share: float) -> bool:
    return distill_share < rare_share * eval_share


def _numeric_gaps(
    feature: str, ev: np.ndarray, dv: np.ndarray, *, rare_share: float, min_eval: int, bins: int
) -> list[CoverageGap]:
    ev = ev[np.isfinite(ev)]
    dv = dv[np.isfinite(dv)]
    n_e, n_d = len(ev), len(dv)
    if n_e == 0:
        return []
    gaps: list[CoverageGap] = []
    if n_d == 0:
        name = f"{feature} (any value)"
        if n_e >= min_eval:
            gaps.append(_distillation_gap(name, n_e, n_e, 0, 0, f"{feature} has values"))
        return gaps
    lo, hi = float(dv.min()), float(dv.max())
    drange = {"distill_range": [lo, hi]}
    below = int(np.count_nonzero(ev < lo))
    above = int(np.count_nonzero(ev > hi))
    if below >= min_eval:
        name = predicate_name([Predicate(feature, "lt", lo)])
        gaps.append(
            _distillation_gap(name, below, n_e, 0, n_d, f"{name} (below the distillation range)", drange)
        )
    if above >= min_eval:
        name = predicate_name([Predicate(feature, "gt", hi)])
        gaps.append(
            _distillation_gap(name, above, n_e, 0, n_d, f"{name} (above the distillation range)", drange)
        )

    # Inside the distillation range: eval quantile bins that the distillation data thins out.
    inside = ev[(ev >= lo) & (ev <= hi)]
    if len(inside) < min_eval:
        return gaps
    edges = np.unique(np.quantile(inside, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) < 2:
        return gaps
    e_idx = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, len(edges) - 2)
    d_in = dv[(dv >= edges[0]) & (dv <= edges[-1])]
    d_idx = np.clip(np.searchsorted(edges, d_in, side="right") - 1, 0, len(edges) - 2)
    e_counts = np.bincount(e_idx, minlength=len(edges) - 1)
    d_counts = np.bincount(d_idx, minlength=len(edges) - 1)
    rare = [_is_rare(e_counts[i] / n_e, d_counts[i] / n_d, rare_share) for i in range(len(edges) - 1)]
    i = 0
    while i < len(rare):
        if not rare[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(rare) and rare[j + 1]:
            j += 1
        e_n, d_n = int(e_counts[i : j + 1].sum()), int(d_counts[i : j + 1].sum())
        last = j == len(rare) - 1
        preds = [
            Predicate(feature, "gte", float(edges[i])),
            Predicate(feature, "lte" if last else "lt", float(edges[j + 1])),
        ]
        if d_n == 0:
            # A hole: widen it to the open interval between the distillation values around it.
            left = float(dv[dv < edges[i]].max())
            right = float(dv[dv > edges[j + 1]].min()) if last else float(dv[dv >= edges[j + 1]].min())
            preds = [Predicate(feature, "gt", left), Predicate(feature, "lt", right)]
            e_n = int(np.count_nonzero((ev > left) & (ev < right)))
        if e_n >= min_eval and _is_rare(e_n / n_e, d_n / n_d, rare_share):
            name = predicate_name(preds)
            gaps.append(_distillation_gap(name, e_n, n_e, d_n, n_d, name, drange))
        i = j + 1
    return gaps


#: Bump with a change of how coverage results are kept that the code hash does not show.
_MEMO_VERSION = 1


def _coverage_to_json(result: tuple[EmbeddingCoverage, list[CoverageGap]]) -> dict[str, Any]:
    coverage, gaps = result
    return {"summary": coverage.to_dict(), "n_eval": int(len(coverage.uncovered_mask)),
            "uncovered": np.flatnonzero(coverage.uncovered_mask).tolist(),
            "gaps": _gaps_to_json(gaps)}


def _gaps_to_json(gaps: Sequence[CoverageGap]) -> list[dict[str, Any]]:
    return [{"kind": g.kind, "slice": g.slice, "n": g.n, "detail": g.detail, "needed": g.needed,
             "extra": g.extra} for g in gaps]


def _gaps_from_json(docs: Sequence[Mapping[str, Any]]) -> list[CoverageGap]:
    return [CoverageGap(kind=g["kind"], slice=g["slice"], n=int(g["n"]), detail=g["detail"],
                        needed=g["needed"], extra=dict(g["extra"])) for g in docs]


def _coverage_from_json(doc: Mapping[str, Any]) -> tuple[EmbeddingCoverage, list[CoverageGap]]:
    summary = doc["summary"]
    mask = np.zeros(int(doc["n_eval"]), dtype=bool)
    mask[np.asarray(doc["uncovered"], dtype=np.intp)] = True
    coverage = EmbeddingCoverage(
        uncovered_fraction=float(summary["uncovered_fraction"]),
        threshold=float(summary["threshold"]), method=str(summary["method"]),
        n_uncovered=int(summary["n_uncovered"]), gap_uncovered=summary["gap_uncovered"],
        gap_covered=summary["gap_covered"], clusters=list(summary["clusters"]),
        uncovered_mask=mask)
    return coverage, _gaps_from_json(doc["gaps"])


#: What a coverage result depends on besides its arguments (the key's code and libraries).
_MEMO: dict[str, Any] = {"folder": "coverage",
                         "modules": ("harness.coverage", "harness.results", "harness.naming",
                                     "harness.report.numbers"),
                         "dists": ("numpy", "scipy", "scikit-learn", "threadpoolctl")}


@memoized("coverage.distillation_gaps", _MEMO_VERSION, **_MEMO, parts=plain_parts,
          encode=_gaps_to_json, decode=_gaps_from_json)
def distillation_gaps(
    eval_features: Mapping[str, np.ndarray],
    distill_features: Mapping[str, np.ndarray],
    *,
    eval_slices: Mapping[str, np.ndarray],
    distill_slices: Mapping[str, np.ndarray],
    rare_share: float = 0.2,
    min_eval: int = 10,
    numeric_bins: int = 10,
    n_eval: int | None = None,
    n_distill: int | None = None,
) -> list[CoverageGap]:
    """``distillation`` gaps: what the eval set has and the distillation data lacks.

    - Categorical features (strings, booleans; a feature missing from
      ``distill_features`` is skipped): each value with at least ``min_eval`` eval examples
      whose distillation share is below ``rare_share`` × its eval share (absent included)
      is a gap named ``feature=value``.
    - Numeric features (int / float columns): eval examples below the distillation minimum
      (``n_words<3``) or above its maximum (``n_words>80``), and, inside that range, runs of
      eval quantile bins (``numeric_bins`` of them) the distillation data thins out the
      same way (``10<=n_words<14``). ``extra["distill_range"]`` gives the range.
    - Declared slices: a boolean mask or an index array over each set, by name (index arrays
      need the set sizes: ``n_eval`` / ``n_distill``, else taken from a feature column, a mask
      or an ``overall`` entry; without them the slice is skipped). ``overall`` itself, a
      slice present in ``eval_slices`` but not in ``distill_slices``, and one whose name a
      feature gap already took are skipped too.

    Each gap has ``n`` = eval count and ``extra`` ``{"distill_n", "eval_share",
    "distill_share"}``; shares are of the non-missing values of the feature (of the whole set
    for slices). Order: features in mapping order, values sorted, then slices in order.
    """
    gaps: list[CoverageGap] = []
    for feature, ecol in eval_features.items():
        if feature not in distill_features:
            continue
        dcol = distill_features[feature]
        ev, dv = _numeric_column(ecol), _numeric_column(dcol)
        if ev is not None and (dv is not None or len(dcol) == 0):
            dnum = dv if dv is not None else np.empty(0)
            gaps.extend(
                _numeric_gaps(feature, ev, dnum, rare_share=rare_share, min_eval=min_eval, bins=numeric_bins)
            )
            continue
        e_counts, d_counts = _value_counts(ecol), _value_counts(dcol)
        n_e, n_d = sum(e_counts.values()), sum(d_counts.values())
        for value in sorted(e_counts, key=_sort_key):
            e_n = e_counts[value]
            d_n = d_counts.get(value, 0)
            if e_n < min_eval:
                continue
            if not _is_rare(e_n / n_e, d_n / n_d if n_d else 0.0, rare_share):
                continue
            name = predicate_name([Predicate(feature, "eq", value)])
            gaps.append(_distillation_gap(name, e_n, n_e, d_n, n_d, name))

    taken = {g.slice for g in gaps}
    if n_eval is None:
        n_eval = _set_size(eval_features, eval_slices)
    if n_distill is None:
        n_distill = _set_size(distill_features, distill_slices)
    for name, esel in eval_slices.items():
        if name == "overall" or name in taken or name not in distill_slices:
            continue
        emask = _as_mask(esel, n_eval)
        dmask = _as_mask(distill_slices[name], n_distill)
        if emask is None or dmask is None:  # shares need the set sizes
            continue
        e_n, d_n = int(emask.sum()), int(dmask.sum())
        e_total, d_total = len(emask), len(dmask)
        if e_n < min_eval or not e_total:
            continue
        if _is_rare(e_n / e_total, d_n / d_total if d_total else 0.0, rare_share):
            gaps.append(_distillation_gap(name, e_n, e_total, d_n, d_total, f"slice {name}"))
    return gaps


# ------------------------------------------------------------------------- embedding coverage


@dataclass(frozen=True)
class EmbeddingCoverage:
    """How much of the eval set lies near the distillation data, in one vector space.

    ``threshold`` is the cosine distance beyond which an eval example is *uncovered*: the
    ``quantile`` of the distillation examples' own nearest-neighbour distances. ``method``
    is ``tfidf-cosine`` or ``vectors-cosine``. ``gap_uncovered`` / ``gap_covered`` are the
    mean per-example student − teacher gap on each side (None without a gap, or when a side
    is empty). ``clusters`` describe the groups of uncovered examples, largest first.
    ``uncovered_mask`` is aligned with the eval examples.
    """

    uncovered_fraction: float
    threshold: float
    method: str
    n_uncovered: int
    gap_uncovered: float | None
    gap_covered: float | None
    clusters: list[dict[str, Any]]
    uncovered_mask: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able summary (everything but the mask)."""
        return {
            "uncovered_fraction": self.uncovered_fraction,
            "threshold": self.threshold,
            "method": self.method,
            "n_uncovered": self.n_uncovered,
            "gap_uncovered": self.gap_uncovered,
            "gap_covered": self.gap_covered,
            "clusters": [dict(c) for c in self.clusters],
        }


# Dense similarity blocks are kept under this many float32 cells (~128 MB).
_BLOCK_CELLS = 32_000_000
_LOO_SAMPLE = 5000
_SAME = 1.0 - 1e-5  # cosine similarity of an exact copy, up to float32 rounding
_CLUSTER_SAMPLE = 2000
_LSA_DIMS = 50
_LSA_MIN_ROWS = 200
_MIN_SILHOUETTE = 0.1
_MAX_IDS = 10
_N_TERMS = 5


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _nearest_similarity(
    queries: sp.csr_matrix | np.ndarray,
    base: sp.csr_matrix | np.ndarray,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Highest cosine similarity of each (L2-normalised) query row to any base row.

    ``exclude[i]`` is a base row that query ``i`` may not match (itself: leave-one-out);
    with ``exclude``, exact copies of the query do not count either, so that duplicated
    distillation examples do not shrink the typical neighbour distance to zero.
    """
    n_q, n_b = queries.shape[0], base.shape[0]
    out = np.zeros(n_q, dtype=np.float64)
    if n_q == 0 or n_b == 0:
        return out
    step = max(1, _BLOCK_CELLS // n_b)
    if sp.issparse(queries):
        base_t = sp.csr_matrix(sp.csr_matrix(base).T)
        for start in range(0, n_q, step):
            stop = min(start + step, n_q)
            block = sp.csr_matrix(queries[start:stop] @ base_t)
            if exclude is not None:
                rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
                self_or_copy = block.indices == exclude[start:stop][rows]
                self_or_copy |= block.data >= _SAME
                block.data[self_or_copy] = 0.0
            # TF-IDF similarities are never negative, so a row with no stored entry has max 0.
            counts = np.diff(block.indptr)
            filled = np.flatnonzero(counts)
            if len(filled):
                out[start + filled] = np.maximum.reduceat(block.data, block.indptr[filled])
        return out
    base_arr = np.asarray(base)
    for start in range(0, n_q, step):
        stop = min(start + step, n_q)
        block = np.asarray(queries[start:stop]) @ base_arr.T
        if exclude is not None:
            block[np.arange(stop - start), exclude[start:stop]] = -np.inf
            block[block >= _SAME] = -np.inf
        out[start:stop] = block.max(axis=1)
    out[~np.isfinite(out)] = 0.0  # no other row to match: as far as an orthogonal one
    return out


def _distinct_rows(x: sp.csr_matrix | np.ndarray) -> int:
    if sp.issparse(x):
        m = sp.csr_matrix(x)
        keys = {
            (m.indices[a:b].tobytes(), m.data[a:b].tobytes())
            for a, b in zip(m.indptr[:-1], m.indptr[1:], strict=True)
        }
        return len(keys)
    dense = np.ascontiguousarray(np.asarray(x))
    return len({row.tobytes() for row in dense})  # hashing rows: far cheaper than a sort


def _cluster_space(x: sp.csr_matrix | np.ndarray, fit_idx: np.ndarray, seed: int) -> np.ndarray:
    """Dense, normalised rows to cluster: sparse TF-IDF goes through a seeded LSA (SVD)
    projection when it is large, which is both faster and kinder to KMeans than raw terms."""
    if not sp.issparse(x):
        return _normalize_rows(np.asarray(x))
    n_components = min(_LSA_DIMS, x.shape[1] - 1, len(fit_idx) - 1)
    if len(fit_idx) <= _LSA_MIN_ROWS or n_components < 2:
        return _normalize_rows(sp.csr_matrix(x).toarray())
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(n_components=n_components, random_state=seed).fit(x[fit_idx])
    return _normalize_rows(svd.transform(x))


def _cluster(x: sp.csr_matrix | np.ndarray, *, max_clusters: int, seed: int) -> np.ndarray:
    """Cluster labels for the rows of ``x`` (normalised vectors); k chosen by silhouette.

    KMeans (seeded) is fit on a subsample of at most ``_CLUSTER_SAMPLE`` rows for each k in
    2..max_clusters; the k with the best cosine silhouette wins if it reaches
    ``_MIN_SILHOUETTE``, else k = 1: scattered outliers stay one group rather than noise
    split k ways.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_score

    n = x.shape[0]
    labels = np.zeros(n, dtype=int)
    if n < 4 or max_clusters < 2:
        return labels
    rng = np.random.default_rng(seed)
    if n > _CLUSTER_SAMPLE:
        fit_idx = np.sort(rng.choice(n, _CLUSTER_SAMPLE, replace=False))
    else:
        fit_idx = np.arange(n)
    z = _cluster_space(x, fit_idx, seed)
    fit_z = z[fit_idx]
    k_max = min(max_clusters, _distinct_rows(fit_z), len(fit_idx) - 1)
    best: tuple[float, Any] | None = None
    for k in range(2, k_max + 1):
        with warnings.catch_warnings():
            # Duplicate rows can leave fewer distinct clusters than asked; that k scores low.
            warnings.simplefilter("ignore", ConvergenceWarning)
            # One k-means++ start per k: the silhouette choice, not restarts, guards quality.
            km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(fit_z)
        fitted = km.labels_
        if len(np.unique(fitted)) < 2:
            continue
        score = float(silhouette_score(fit_z, fitted, metric="cosine"))
        if best is None or score > best[0] + 1e-12:
            best = (score, km)
    if best is None or best[0] < _MIN_SILHOUETTE:
        return labels
    return np.asarray(best[1].predict(z), dtype=int)


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _coverage_parts(a: Mapping[str, Any]) -> tuple[Any, ...]:
    """The memo key of :func:`embedding_coverage`: texts (or vectors), gain, ids, settings."""
    ev, dv, gain = a["eval_vectors"], a["distill_vectors"], a["gain"]
    return (None if ev is not None else list(a["eval_texts"]),
            None if dv is not None else list(a["distill_texts"]),
            None if gain is None else np.asarray(gain, dtype=np.float64), list(a["ids"]),
            None if ev is None else np.asarray(ev), None if dv is None else np.asarray(dv),
            float(a["quantile"]), int(a["max_clusters"]), int(a["seed"]))


@memoized("coverage.embedding_coverage", _MEMO_VERSION, **_MEMO, parts=_coverage_parts,
          encode=_coverage_to_json, decode=_coverage_from_json)
def embedding_coverage(
    eval_texts: Sequence[str],
    distill_texts: Sequence[str],
    *,
    gain: np.ndarray | None = None,
    ids: Sequence[str],
    eval_vectors: np.ndarray | None = None,
    distill_vectors: np.ndarray | None = None,
    quantile: float = 0.95,
    max_clusters: int = 5,
    seed: int = 0,
) -> tuple[EmbeddingCoverage, list[CoverageGap]]:
    """Which eval examples lie far from all distillation examples, and how they group.

    Inside a run's memo (:mod:`harness.memo`) the result for the same texts (or vectors),
    gain, ids and settings is read back: it is a pure, seeded function of them.

    Vectors are TF-IDF (sublinear tf, English stop words dropped; vocabulary and idf fit on
    the distillation and eval texts together, so that words the distillation data never saw
    count against coverage instead of vanishing) unless both
    ``eval_vectors`` and ``distill_vectors`` are given (teacher embeddings, say); distance is
    cosine. The *typical neighbour distance* is the ``quantile`` of the distillation
    examples' leave-one-out nearest-neighbour distances (on a seeded subsample of at most
    5000); an eval example whose nearest distillation example is farther is uncovered. By
    construction about ``1 - quantile`` of an eval set drawn like the distillation data is
    uncovered, so read ``uncovered_fraction`` against that.

    The uncovered examples are clustered (seeded KMeans, k ≤ ``max_clusters`` picked by
    cosine silhouette, one cluster when no split is clear). Each cluster gives an
    ``embedding`` gap: ``slice`` ``embedding cluster 1 (terms: …)`` (top TF-IDF terms of its
    centroid, TF-IDF only), ``n``, ``extra["ids"]`` (up to 10, closest to the centroid
    first) and ``extra["gap"]``, the mean of ``gain`` (per-example student − teacher value,
    e.g. correctness) over the cluster.
    """
    n_eval = len(eval_texts) if eval_vectors is None else len(eval_vectors)
    gain = _checked_gain(gain, ids, n_eval)
    if (eval_vectors is None) != (distill_vectors is None):
        raise ValueError("give both eval_vectors and distill_vectors, or neither")
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    ev, dv, method, terms = _vectors(eval_texts, distill_texts, eval_vectors, distill_vectors)
    n_distill = dv.shape[0]
    if n_distill < 2:
        raise ValueError("embedding coverage needs at least 2 distillation examples")

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n_distill, min(n_distill, _LOO_SAMPLE), replace=False))
    loo = 1.0 - _nearest_similarity(dv[sample], dv, exclude=sample)
    threshold = float(np.quantile(np.clip(loo, 0.0, 2.0), quantile))
    distance = np.clip(1.0 - _nearest_similarity(ev, dv), 0.0, 2.0)
    uncovered = distance > threshold + 1e-9
    n_unc = int(uncovered.sum())
    gain_unc = _mean(gain[uncovered]) if gain is not None else None
    gain_cov = _mean(gain[~uncovered]) if gain is not None else None
    clusters: list[dict[str, Any]] = []
    if n_unc:
        clusters = _uncovered_clusters(ev, np.flatnonzero(uncovered), distance, ids, gain, terms,
                                       max_clusters=max_clusters, seed=seed)
    where = f"beyond the typical {threshold:.3f} ({method}, {quantile:g} quantile of the " \
        "distillation set's own neighbours)"
    gaps = [_cluster_gap(c, where, gain_cov) for c in clusters]
    coverage = EmbeddingCoverage(
        uncovered_fraction=float(n_unc / n_eval) if n_eval else 0.0,
        threshold=threshold,
        method=method,
        n_uncovered=n_unc,
        gap_uncovered=gain_unc,
        gap_covered=gain_cov,
        clusters=clusters,
        uncovered_mask=uncovered,
    )
    return coverage, gaps


def _checked_gain(gain: np.ndarray | None, ids: Sequence[str], n_eval: int) -> np.ndarray | None:
    if len(ids) != n_eval:
        raise ValueError(f"ids has {len(ids)} entries for {n_eval} eval examples")
    if gain is None:
        return None
    gain = np.asarray(gain, dtype=float)
    if gain.shape != (n_eval,):
        raise ValueError(f"gain has shape {gain.shape}, expected ({n_eval},)")
    return gain


def _vectors(eval_texts: Sequence[str], distill_texts: Sequence[str],
             eval_vectors: np.ndarray | None, distill_vectors: np.ndarray | None,
             ) -> tuple[Any, Any, str, np.ndarray | None]:
    """(eval rows, distillation rows, method, TF-IDF terms or None), rows L2-normalized."""
    if eval_vectors is not None and distill_vectors is not None:
        ev, dv = _normalize_rows(eval_vectors), _normalize_rows(distill_vectors)
        if ev.shape[1] != dv.shape[1]:
            raise ValueError(f"eval vectors have {ev.shape[1]} dimensions, distillation {dv.shape[1]}")
        return ev, dv, "vectors-cosine", None
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32)
    # Vocabulary and idf come from both sets: fit on the distillation texts alone, every
    # word they never saw would vanish from the eval vectors — exactly the signal of a
    # gap — and an eval text made of new words would be a zero vector, unclusterable.
    both = list(distill_texts) + list(eval_texts)
    try:
        x = vectorizer.fit_transform(both)
    except ValueError:  # only stop words: keep them rather than have no vocabulary
        vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
        try:
            x = vectorizer.fit_transform(both)
        except ValueError as exc:
            raise ValueError("embedding coverage: the texts contain no words to compare") from exc
    x = sp.csr_matrix(x)
    n_d = len(distill_texts)
    return x[n_d:], x[:n_d], "tfidf-cosine", vectorizer.get_feature_names_out()


def _uncovered_clusters(ev: Any, unc_idx: np.ndarray, distance: np.ndarray, ids: Sequence[str],
                        gain: np.ndarray | None, terms: np.ndarray | None, *,
                        max_clusters: int, seed: int) -> list[dict[str, Any]]:
    """The uncovered eval rows (``unc_idx``) grouped, largest group first: each group's name,
    size, ids closest to its centroid, top terms, mean gain and mean distance."""
    x_unc = ev[unc_idx]
    # The clustering problems are small; BLAS/OpenMP threads only contend on them.
    with threadpool_limits(limits=1):
        labels = _cluster(x_unc, max_clusters=max_clusters, seed=seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    groups.sort(key=lambda g: (-len(g), int(g[0])))
    clusters = []
    for number, members in enumerate(groups, start=1):
        rows = x_unc[members]
        centroid = np.asarray(rows.mean(axis=0)).ravel()
        sims = rows @ centroid if not sp.issparse(rows) else np.asarray(rows @ centroid).ravel()
        order = np.lexsort((members, -np.asarray(sims, dtype=float)))
        top_terms: list[str] = []
        if terms is not None:
            nz = np.flatnonzero(centroid > 0)
            top = nz[np.lexsort((terms[nz], -centroid[nz]))][:_N_TERMS]
            top_terms = [str(terms[t]) for t in top]
        name = f"embedding cluster {number}"
        if top_terms:
            name += f" (terms: {', '.join(top_terms)})"
        clusters.append({
            "cluster": number,
            "slice": name,
            "n": int(len(members)),
            "ids": [str(ids[unc_idx[members[i]]]) for i in order[:_MAX_IDS]],
            "terms": top_terms,
            "gap": _mean(gain[unc_idx[members]]) if gain is not None else None,
            "mean_distance": float(distance[unc_idx[members]].mean()),
        })
    return clusters


def _cluster_gap(cluster: Mapping[str, Any], where: str, gain_covered: float | None
                 ) -> CoverageGap:
    """The ``embedding`` coverage gap of one cluster of uncovered eval examples."""
    detail = (f"{cluster['n']} eval examples whose nearest distillation example is at cosine "
              f"distance {cluster['mean_distance']:.3f} on average, {where}")
    if cluster["gap"] is not None:
        detail += f"; student − teacher gap {cluster['gap']:+.3f} here"
        if gain_covered is not None:
            detail += f" vs {gain_covered:+.3f} on covered examples"
    return CoverageGap(kind="embedding", slice=cluster["slice"], n=cluster["n"], detail=detail,
                       extra={"ids": list(cluster["ids"]), "gap": cluster["gap"]})


# --------------------------------------------------------------------------- the run's step

@dataclass(frozen=True)
class CoverageOutcome:
    """Distillation coverage of one run: its summary, its gaps and ``uncovered_fraction``."""

    summary: dict[str, Any] = field(default_factory=dict)
    gaps: tuple[CoverageGap, ...] = ()
    figures: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def coverage_step(prep: PreparedSuite, teacher: Model, ctx: EvalContext, s_out: Outputs,
                  seed: int) -> CoverageOutcome:
    """Where the distillation data does not cover the eval data (by feature and by embedding).

    The per-example gain ``student - teacher`` (1 where the student alone is right, -1 where
    it alone is wrong) tells which uncovered clusters cost the student.

    Inside a run's memo (:mod:`harness.memo`) the outcome is kept under everything it depends
    on: the distillation file's sha256 and how the suite reads it (its data settings, slices,
    labels, coverage settings), the eval side (features, declared slices, texts, ids, gain)
    and the seed. A warm run that finds it neither loads nor parses the distillation data.
    TF-IDF coverage only: teacher embeddings are computed every run.
    """
    from harness.memo import active_root, code_version, memo_json, memo_key
    from harness.paths import file_sha256

    spec = prep.spec
    settings = spec.coverage
    if not settings.enabled:
        return CoverageOutcome(summary={"enabled": False}, errors={
            "uncovered_fraction": f"coverage is switched off (coverage.enabled: false in "
                                  f"{display_path(spec.path)})"})
    if spec.distillation_data is None:
        return CoverageOutcome(errors={"uncovered_fraction": "the suite declares no "
                                       "distillation_data"})
    gain = None
    t_right = prep.task.correct(ctx, ctx.teacher)
    if t_right is not None:
        s_right = prep.task.correct(ctx, s_out)
        assert s_right is not None
        gain = s_right - t_right
    try:
        distill_sha256 = file_sha256(spec.distillation_data.path)
    except OSError:  # loading it says what is wrong, with the file's name
        distill_sha256 = None
    if active_root() is None or settings.embeddings == "teacher" or distill_sha256 is None:
        return _coverage(prep, teacher, gain, seed)
    data = prep.data
    key = memo_key(
        "coverage.coverage_step", _MEMO_VERSION,
        code_version(("harness.coverage", "harness.data", "harness.tasks", "harness.spec_types",
                      "harness.results", "harness.naming", "harness.report.numbers"),
                     _MEMO["dists"]),
        distill_sha256,
        repr((spec.task, spec.labels, spec.data, spec.distillation_data, spec.slices, settings)),
        {f: data.features[f] for f in spec.data.features if f in data.features},
        prep.declared_slices, list(data.texts()), list(data.ids),
        None if gain is None else np.asarray(gain, dtype=np.float64), int(seed))
    return memo_json("coverage", key, lambda: _coverage(prep, teacher, gain, seed),
                     encode=_outcome_to_json, decode=_outcome_from_json)


def _outcome_to_json(outcome: CoverageOutcome) -> dict[str, Any]:
    return {"summary": outcome.summary, "gaps": _gaps_to_json(outcome.gaps),
            "figures": outcome.figures, "errors": outcome.errors}


def _outcome_from_json(doc: Mapping[str, Any]) -> CoverageOutcome:
    return CoverageOutcome(summary=dict(doc["summary"]), gaps=tuple(_gaps_from_json(doc["gaps"])),
                           figures={k: float(v) for k, v in doc["figures"].items()},
                           errors=dict(doc["errors"]))


def _coverage(prep: PreparedSuite, teacher: Model, gain: np.ndarray | None,
              seed: int) -> CoverageOutcome:
    """:func:`coverage_step`'s outcome, computed (the distillation data loaded if need be)."""
    from harness.data import build_slices

    spec, data, distill = prep.spec, prep.data, prep.distillation()
    assert distill is not None
    settings = spec.coverage
    eval_slices = prep.declared_slices
    distill_slices = {k: v for k, v in build_slices(spec, distill, allow_empty=True,
                                                    drop_small=False).items()
                      if k != "overall"}
    for name in eval_slices:  # a by: value absent from the distillation data is a gap too
        distill_slices.setdefault(name, np.array([], dtype=int))
    shared = [f for f in spec.data.features if f in distill.features]
    gaps = distillation_gaps(
        {f: data.features[f] for f in shared}, {f: distill.features[f] for f in shared},
        eval_slices=eval_slices, distill_slices=distill_slices, n_eval=len(data),
        n_distill=len(distill), rare_share=settings.rare_share)
    eval_vectors = distill_vectors = None
    if settings.embeddings == "teacher":
        eval_vectors = teacher.embed(data.texts())
        distill_vectors = teacher.embed(distill.texts()) if eval_vectors is not None else None
    summary, emb_gaps = embedding_coverage(
        data.texts(), distill.texts(), gain=gain, ids=list(data.ids), eval_vectors=eval_vectors,
        distill_vectors=distill_vectors, quantile=settings.quantile, seed=seed)
    return CoverageOutcome(summary=summary.to_dict(), gaps=(*gaps, *emb_gaps),
                           figures={"uncovered_fraction": float(summary.uncovered_fraction)})
