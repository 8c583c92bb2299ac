"""Turning rubric criteria into checks and checks into verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from harness.memo import memoized
from harness.metrics import Metric, get_metric, judge_metric_parts
from harness.outputs import EvalContext, Outputs
from harness.report.numbers import adaptive
from harness.results import Check, Pocket, SliceRow
from harness.spec_types import Criterion, RubricSpec
from harness.stats import breaches


@dataclass(frozen=True)
class CompareMode:
    """What a criterion's ``compare`` means: what the student is compared with (``teacher``,
    ``baseline``, or None for a plain value) and how (``delta``, ``ratio`` or ``value``)."""

    reference: str | None
    form: str

    @property
    def with_baseline(self) -> bool:
        return self.reference == "baseline"

    @property
    def with_teacher(self) -> bool:
        return self.reference == "teacher"


#: Every ``compare`` mode of the rubric format, decoded once.
COMPARE_MODES: dict[str, CompareMode] = {
    "value": CompareMode(None, "value"),
    "teacher_delta": CompareMode("teacher", "delta"),
    "teacher_ratio": CompareMode("teacher", "ratio"),
    "baseline_delta": CompareMode("baseline", "delta"),
    "baseline_ratio": CompareMode("baseline", "ratio"),
}


def compare_mode(compare: str) -> CompareMode:
    """The :class:`CompareMode` of a ``compare`` value (validated when the rubric loaded)."""
    return COMPARE_MODES[compare]


def decide(
    *,
    value: float | None,
    min: float | None,
    max: float | None,
    n: int,
    min_support: int,
    severity: str = "fail",
    decision: str = "significant",
    alpha: float = 0.05,
    p_value: float | None = None,
    q_value: float | None = None,
    testable: bool = True,
    strict: bool = False,
) -> str:
    """The verdict of one check, as DESIGN's "Verdicts" section defines it.

    ``p_value`` / ``q_value`` are one-sided p-values of "the true value meets the threshold";
    ``q_value`` (Benjamini–Hochberg adjusted) is used when given (per-slice and discovered
    checks), else ``p_value`` (overall checks, at ``alpha``). ``testable`` False means the
    metric has no sampling distribution (a size, a measured latency): the point value decides.
    """
    if value is None:
        return "error"
    if not breaches(value, min=min, max=max):
        return "pass"
    if severity == "warn":
        return "warn"
    if testable and n < min_support:
        return "fail" if strict else "inconclusive"
    if decision == "point" or not testable:
        return "fail"
    p = q_value if q_value is not None else p_value
    if p is not None and p < alpha:
        return "fail"
    return "fail" if strict else "inconclusive"


# --------------------------------------------------------------------------- checks

SCOPE_SLICES = {"overall": ("overall",), "slices": ("slices",), "all": ("overall", "slices"),
                "discovered": ("discovered",)}
MAX_EXAMPLES = 5


#: What a check covers (:attr:`PlannedCheck.kind`): every row (``overall``, or the whole
#: traffic sample), one declared slice, or the pockets a search finds.
WHOLE, DECLARED, DISCOVERED = "whole", "declared", "discovered"


@dataclass(frozen=True)
class PlannedCheck:
    """A check known before any model runs: its id, criterion, slice, owner and playbook.

    ``slice`` is the name items and reports show; what it means is typed beside it: ``kind``
    (:data:`WHOLE`, :data:`DECLARED`, :data:`DISCOVERED`), ``rows`` (``"eval"`` or
    :data:`TRAFFIC`, the rows it reads) and ``declared`` (the declared slice, for a
    :data:`DECLARED` check on either rows). ``min_support`` is the declared slice's own
    minimum support (its ``by:`` entry's ``min_support``); None: the criterion's.
    """

    id: str
    criterion: Criterion
    slice: str
    owner: str | None = None
    playbook: str | None = None
    kind: str = DECLARED
    rows: str = "eval"
    declared: str | None = None
    min_support: int | None = None

    @property
    def item_name(self) -> str:
        """The check's name within its suite (its pytest item): ``criterion[slice]``."""
        return f"{self.criterion.name}[{self.slice}]"


#: The slice names of traffic checks: the whole traffic sample, a declared slice of it, pockets.
TRAFFIC = "traffic"
TRAFFIC_POCKETS = "traffic:discovered"


def traffic_slice(name: str) -> str:
    """The check slice of declared slice ``name`` on the traffic rows."""
    return f"{TRAFFIC}:{name}"


def check_id(suite: str, criterion: str, slice_name: str) -> str:
    return f"{suite}::{criterion}[{slice_name}]"


def plan_checks(suite: str, rubric: RubricSpec, slice_names: Sequence[str], *,
                traffic_slices: Sequence[str] = (),
                slice_owners: Mapping[str, tuple[str | None, str | None]] | None = None,
                pockets: bool = True, slice_support: Mapping[str, int] | None = None,
                ) -> list[PlannedCheck]:
    """One planned check per (criterion, slice in its scope), in rubric order.

    ``overall`` is the whole data set; ``slices`` are the declared ones; a ``discovered``
    criterion is one check over every pocket it finds. A ``traffic`` criterion checks the whole
    traffic sample, each declared slice in ``traffic_slices`` (those with traffic rows) and the
    pockets searched on the traffic rows, unless ``pockets`` is False (``discovery.enabled:
    false``). A criterion's owner and playbook win over its slice's. ``slice_support`` maps a
    declared slice to its own minimum support (a ``by:`` entry's ``min_support``): its checks
    use it instead of their criterion's.
    """
    declared = [s for s in slice_names if s != "overall"]
    owners = slice_owners or {}
    plan: list[PlannedCheck] = []
    for c in rubric.criteria:
        # (shown slice name, kind, declared slice) of each check of the criterion.
        targets: list[tuple[str, str, str | None]] = []
        if c.scope == "discovered":
            targets = [("discovered", DISCOVERED, None)]
        elif c.scope == TRAFFIC:
            targets = [(TRAFFIC, WHOLE, None),
                       *((traffic_slice(s), DECLARED, s) for s in traffic_slices if s != "overall"),
                       *([(TRAFFIC_POCKETS, DISCOVERED, None)] if pockets else [])]
        else:
            if c.scope in ("overall", "all"):
                targets.append(("overall", WHOLE, None))
            if c.scope in ("slices", "all"):
                targets.extend((s, DECLARED, s) for s in declared)
        rows = TRAFFIC if c.scope == TRAFFIC else "eval"
        for shown, kind, name in targets:
            own, book = owners.get(name, (None, None)) if name is not None else (None, None)
            plan.append(PlannedCheck(check_id(suite, c.name, shown), c, shown,
                                     owner=c.owner or own, playbook=c.playbook or book,
                                     kind=kind, rows=rows, declared=name,
                                     min_support=(slice_support or {}).get(name)
                                     if name is not None else None))
    return plan


@dataclass
class GateInputs:
    """Everything the gate needs, aligned by example."""

    ctx: EvalContext
    student: Outputs
    slices: Mapping[str, np.ndarray]
    ids: Sequence[str]
    baseline: Outputs | None = None
    baseline_error: str | None = None
    #: Pinned baselines by name (``against: NAME``), and why a pin could not be loaded.
    baselines: Mapping[str, Outputs] = field(default_factory=dict)
    baseline_errors: Mapping[str, str] = field(default_factory=dict)
    suite_metrics: Mapping[str, float] | None = None
    suite_metric_errors: Mapping[str, str] | None = None
    features: Mapping[str, np.ndarray] | None = None
    discovery: Any = None
    seed: int = 0
    strict: bool = False
    whole: str = "overall"  # the slice that is every row of these inputs
    _per_example: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    def per_example(self, metric: Metric, out: Outputs) -> np.ndarray:
        """``metric``'s per-example values on ``out``, computed once per run for all checks."""
        key = (metric.name, id(out))
        if key not in self._per_example:
            self._per_example[key] = metric.per_example(self.ctx, out)
        return self._per_example[key]

    def value(self, metric: Metric, out: Outputs, index: np.ndarray) -> float:
        """``metric`` over the examples at ``index`` (per-example values reused)."""
        if metric.per_example_fn is None:
            return metric.value(self.ctx, out, index)
        vals = self.per_example(metric, out)[index]
        return float(vals.mean()) if len(vals) else float("nan")


def _bound(c: Criterion, value: float | None) -> tuple[str, float]:
    if c.min is not None and (c.max is None or value is None or value < c.min):
        return "min", c.min
    assert c.max is not None
    return "max", c.max


def _threshold(c: Criterion) -> dict[str, float]:
    out: dict[str, float] = {}
    if c.min is not None:
        out["min"] = c.min
    if c.max is not None:
        out["max"] = c.max
    return out


def _error_check(p: PlannedCheck, n: int, message: str) -> Check:
    c = p.criterion
    return Check(id=p.id, criterion=c.name, scope=c.scope, slice=p.slice, metric=c.metric,
                 compare=c.compare, value=None, ci=None, n=n, threshold=_threshold(c),
                 verdict="error", message=message, severity=c.severity, decision=c.decision,
                 criterion_index=c.index, kind=p.kind)


def _reference(p: PlannedCheck, inputs: GateInputs) -> tuple[Outputs | None, str | None]:
    mode = compare_mode(p.criterion.compare)
    if mode.with_teacher:
        return inputs.ctx.teacher, None
    if mode.with_baseline and p.criterion.against != "current":
        name = p.criterion.against
        if name not in inputs.baselines:
            return None, inputs.baseline_errors.get(name) or (
                f"no pinned baseline {name!r}: write it with `distill baseline pin SUITE --as "
                f"{name}`")
        return inputs.baselines[name], None
    if mode.with_baseline:
        if inputs.baseline is None:
            return None, inputs.baseline_error or ("no baseline: run with --distill-update-baselines "
                                                   "to write one")
        return inputs.baseline, None
    return None, None


def _bad_examples(metric: Metric, s: np.ndarray, r: np.ndarray | None, ids: Sequence[str],
                  index: np.ndarray) -> tuple[str, ...]:
    """A few ids that pull the value the wrong way: reference better than student first."""
    sign = 1.0 if metric.higher_is_better else -1.0
    if r is not None:
        worse = np.flatnonzero(sign * (s - r) < 0)
        order = worse[np.argsort(sign * (s[worse] - r[worse]), kind="stable")]
    else:
        order = np.argsort(sign * s, kind="stable")[:MAX_EXAMPLES]
        order = order[sign * s[order] < (sign * s).max()] if len(order) else order
    return tuple(ids[int(index[i])] for i in order[:MAX_EXAMPLES])


def evaluate_check(p: PlannedCheck, inputs: GateInputs) -> Check:
    """The check's value, CI and one-sided p-value (verdict decided later, after BH)."""
    from harness import stats

    c = p.criterion
    metric = get_metric(c.metric)
    if metric.kind == "suite":
        return _suite_check(p, inputs)
    if c.model == "teacher":  # the teacher's own metric (its output health) is what is checked
        inputs = replace(inputs, student=inputs.ctx.teacher)
    index, excluded = _teacher_answered(c, inputs, inputs.slices[p.slice])
    n = len(index)
    ref, err = _reference(p, inputs)
    if err:
        return _error_check(p, n, err)
    unvalued_n = 0
    try:
        if metric.per_example_fn is not None:
            s_all = inputs.per_example(metric, inputs.student)
            r_all = inputs.per_example(metric, ref) if ref is not None else None
            # An example without a value (a judge's invalid judgment is NaN) leaves the check;
            # its n says so.
            unvalued = ~np.isfinite(s_all[index])
            if r_all is not None:
                unvalued |= ~np.isfinite(r_all[index])
            unvalued_n = int(unvalued.sum())
            if unvalued_n:
                index = index[~unvalued]
                n = len(index)
            s = s_all[index]
            r = r_all[index] if r_all is not None else None
            statistic = None
        else:
            s = np.arange(n, dtype=float)
            r = np.arange(n, dtype=float) if ref is not None else None
            ref_out = ref

            def statistic(rows: np.ndarray, _i: np.ndarray = index) -> tuple[float, float | None]:
                sub = _i[rows]
                sv = metric.value(inputs.ctx, inputs.student, sub)
                rv = metric.value(inputs.ctx, ref_out, sub) if ref_out is not None else None
                return sv, rv
    except Exception as exc:  # a metric that cannot be computed on these outputs
        return _error_check(p, n, f"{c.metric} cannot be computed: {exc}")
    if n == 0 and metric.per_example_fn is not None and unvalued_n:
        return _error_check(p, 0, f"none of the {unvalued_n} examples of {p.slice!r} has a value "
                            f"of {c.metric}" + (" (every judgment was invalid: the judge's "
                                                "answers matched no verdict)"
                                                if judge_metric_parts(c.metric) else ""))
    if n == 0:
        return _error_check(p, 0, f"slice {p.slice!r} has no examples")
    point = _point(metric, inputs, index, ref, c.compare)
    bound, threshold = _bound(c, point)
    test = stats.compare_test(student=s, reference=r, compare=c.compare, bound=bound,
                              threshold=threshold, binary=metric.binary and statistic is None,
                              statistic=statistic, confidence=c.confidence, seed=inputs.seed)
    needed = None
    if breaches(test.value, min=c.min, max=c.max) and statistic is None:
        needed = stats.needed_examples(student=s, reference=r, compare=c.compare, bound=bound,
                                       threshold=threshold, binary=metric.binary, alpha=c.alpha)
    if not test.defined:
        return _error_check(p, n, f"{c.metric} {c.compare} is undefined on this slice "
                            f"({test.method})")
    s_val = inputs.value(metric, inputs.student, index)
    r_val = inputs.value(metric, ref, index) if ref is not None else None
    examples = _bad_examples(metric, s, r, inputs.ids, index) if statistic is None else ()
    return Check(
        id=p.id, criterion=c.name, scope=c.scope, slice=p.slice, metric=c.metric,
        compare=c.compare, value=float(test.value), ci=(float(test.ci[0]), float(test.ci[1])),
        n=n, threshold=_threshold(c), verdict="pending", message="", p_value=test.p_value,
        examples=examples, severity=c.severity, decision=c.decision, test=test.method,
        teacher=inputs.value(metric, inputs.ctx.teacher, index),
        student=s_val, reference=r_val, needed=needed, criterion_index=c.index, kind=p.kind,
        extra={"testable": test.testable,
               **({"against": c.against} if compare_mode(c.compare).with_baseline
                  and c.against != "current" else {}),
               **({"model": "teacher"} if c.model == "teacher" else {}),
               **({"excluded": excluded} if excluded is not None else {}),
               **({"unvalued": unvalued_n} if unvalued_n else {}),
               **({"min_support": p.min_support} if p.min_support is not None else {})},
    )


def _teacher_answered(c: Criterion, inputs: GateInputs,
                      index: np.ndarray) -> tuple[np.ndarray, int | None]:
    """``index`` without the examples the teacher answered invalidly, under
    ``teacher_invalid: exclude`` on a teacher-delta/ratio check, and how many left (None when
    nothing is excluded by rule)."""
    if c.teacher_invalid != "exclude" or not compare_mode(c.compare).with_teacher:
        return index, None
    invalid = inputs.per_example(get_metric("invalid_rate"), inputs.ctx.teacher)[index]
    return index[invalid == 0], int(np.count_nonzero(invalid))


def _point(metric: Metric, inputs: GateInputs, index: np.ndarray, ref: Outputs | None,
           compare: str) -> float:
    s = inputs.value(metric, inputs.student, index)
    if ref is None:
        return s
    r = inputs.value(metric, ref, index)
    if compare_mode(compare).form == "delta":
        return s - r
    return s / r if r else float("nan")


def _suite_check(p: PlannedCheck, inputs: GateInputs) -> Check:
    c = p.criterion
    values = inputs.suite_metrics or {}
    n = len(inputs.ids)
    if c.metric not in values:
        why = (inputs.suite_metric_errors or {}).get(c.metric, "not measured in this run")
        return _error_check(p, n, f"{c.metric} could not be computed: {why}")
    v = float(values[c.metric])
    return Check(id=p.id, criterion=c.name, scope=c.scope, slice=p.slice, metric=c.metric,
                 compare=c.compare, value=v, ci=None, n=n, threshold=_threshold(c),
                 verdict="pending", message="", severity=c.severity, decision=c.decision,
                 test="point value (a run-level figure)", student=v, criterion_index=c.index,
                 kind=p.kind, extra={"testable": False})


def discovered_check(p: PlannedCheck, inputs: GateInputs) -> tuple[Check, list[Pocket]]:
    """Search pockets for a ``discovered`` criterion; the check fails on a confirmed breach."""
    c = p.criterion
    metric = get_metric(c.metric)
    ref, err = _reference(p, inputs)
    n = len(inputs.ids)
    if err:
        return _error_check(p, n, err), []
    bound, threshold = _bound(c, None)
    mode = compare_mode(c.compare)
    compare = "teacher_ratio" if mode.form == "ratio" else "teacher_delta"
    if ref is None and "teacher" in metric.needs:
        # A label-free fidelity metric (agreement, teacher_match) is 1 for the teacher on
        # every example, so "value >= m" in a pocket is "student - teacher >= m - 1" there.
        ref = inputs.ctx.teacher
        r_self = inputs.per_example(metric, ref)
        if not len(r_self) or not np.allclose(r_self, r_self[0]):
            ref = None
        else:
            threshold, compare = threshold - float(r_self[0]), "teacher_delta"
    if ref is None:
        return _error_check(p, n, "scope: discovered compares the student with the teacher or "
                            "the baseline (compare: teacher_delta / teacher_ratio)"), []
    s = inputs.per_example(metric, inputs.student)
    r = inputs.per_example(metric, ref)
    disc = inputs.discovery
    feats = dict(inputs.features or {})
    if not feats:
        return _error_check(p, n, "no discovery features: declare data.features or "
                            "discovery.features"), []
    ids = list(inputs.ids)
    keep, excluded = _teacher_answered(c, inputs, np.arange(n))
    if excluded:  # teacher_invalid: exclude — pockets are searched where the teacher answered
        s, r, ids = s[keep], r[keep], [ids[i] for i in keep]
        feats = {k: np.asarray(v)[keep] for k, v in feats.items()}
    left = {"excluded": excluded} if excluded is not None else {}
    found = find_pockets(
        feats, s, r, threshold=threshold, bound=bound, compare=compare,
        max_predicates=disc.max_predicates if disc else 2,
        min_support=disc.min_support if disc else c.min_support,
        n_bins=disc.n_bins if disc else 4,
        alpha=c.alpha, binary=metric.binary, seed=inputs.seed, ids=ids,
        criterion=c.name, metric=c.metric)
    confirmed = [pk for pk in found if pk.confirmed]
    if confirmed:
        worst = confirmed[0]
        if c.compare == "value":
            value = worst.student
        else:
            value = worst.delta if mode.form == "delta" else (
                worst.student / worst.teacher if worst.teacher else float("nan"))
        check = Check(
            id=p.id, criterion=c.name, scope=c.scope, slice=p.slice, metric=c.metric,
            compare=c.compare, value=float(value), ci=None, n=worst.n, threshold=_threshold(c),
            verdict="warn" if c.severity == "warn" else "fail", message="",
            p_value=worst.p_value, q_value=worst.q_value, examples=worst.ids[:MAX_EXAMPLES],
            severity=c.severity, decision=c.decision,
            test="pocket search (each half searched, the other confirms; BH at alpha/2 each)",
            criterion_index=c.index, kind=p.kind,
            extra={"pockets": [{"slice": pk.slice, "n": pk.n, "delta": pk.delta,
                                "q_value": pk.q_value} for pk in confirmed], **left})
    else:
        overall = keep if excluded else inputs.slices[inputs.whole]
        value = _point(metric, inputs, overall, ref, c.compare)
        check = Check(
            id=p.id, criterion=c.name, scope=c.scope, slice=p.slice, metric=c.metric,
            compare=c.compare, value=float(value), ci=None, n=len(overall),
            threshold=_threshold(c),
            verdict="pass", message="", severity=c.severity, decision=c.decision,
            test="pocket search (each half searched, the other confirms; BH at alpha/2 each)",
            criterion_index=c.index, kind=p.kind, extra={"pockets": [], **left})
    return check, found


#: Bump with a change of how a pocket search is kept that the code hash does not show.
_POCKETS_MEMO = 2  # 2: entries are Pocket.to_dict()


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _pockets_to_json(found: list[Pocket]) -> list[dict[str, Any]]:
    if not all(_plain(p.value) for pk in found for p in pk.predicates):
        raise TypeError("a predicate value that JSON does not keep as it is")
    return [pk.to_dict() for pk in found]


def _pocket_parts(a: Mapping[str, Any]) -> tuple[Any, ...]:
    """The memo key of a pocket search: features, per-example values, ids and parameters."""
    params = {k: (list(v) if k == "ids" and v is not None else v)
              for k, v in a["params"].items()}
    return ({k: np.asarray(v) for k, v in a["features"].items()},
            np.asarray(a["student"], dtype=np.float64),
            np.asarray(a["teacher"], dtype=np.float64), params)


@memoized("gate.find_pockets", _POCKETS_MEMO, folder="pockets",
          modules=("harness.pockets", "harness.stats", "harness.naming", "harness.results"),
          dists=("numpy", "scipy"), parts=_pocket_parts, encode=_pockets_to_json,
          decode=lambda v: [Pocket.from_dict(d) for d in v])
def find_pockets(features: Mapping[str, np.ndarray], student: np.ndarray, teacher: np.ndarray,
                 **params: Any) -> list[Pocket]:
    """:func:`harness.pockets.find_pockets`, read from the run's memo (harness.memo) when the
    same features, per-example values, ids and parameters were searched before: the search
    is a pure, seeded function of them (its code and scipy's version are in the key)."""
    from harness import pockets

    return pockets.find_pockets(features, student, teacher, **params)


@dataclass(frozen=True)
class Decisions:
    """The decided checks of one student and the pockets its discovered checks found."""

    checks: list[Check]
    pockets: list[Pocket]
    traffic_pockets: list[Pocket] = field(default_factory=list)


def decide_checks(plan: Sequence[PlannedCheck], inputs: GateInputs,
                  criteria: Mapping[str, Criterion], *, strict: bool,
                  traffic: GateInputs | None = None) -> Decisions:
    """Every planned check of one student: computed, then BH and verdicts (:func:`finalize`).

    ``traffic`` holds the label-free inputs on the traffic rows (``scope: traffic``); without
    it those checks are errors saying the suite declares no traffic data.
    """
    checks: list[Check] = []
    found_by: dict[str, list[Pocket]] = {"eval": [], TRAFFIC: []}
    for planned in plan:
        source = traffic if planned.rows == TRAFFIC else inputs
        if source is None:
            check = _error_check(planned, 0, "scope: traffic needs traffic_data in the suite")
        elif planned.kind == DISCOVERED:
            check, found = discovered_check(planned, source)
            found_by[planned.rows].extend(found)
        elif planned.slice not in source.slices:
            check = _error_check(planned, 0, f"slice {planned.slice!r} has no rows in this run")
        else:
            check = evaluate_check(planned, source)
        checks.append(replace(check, owner=planned.owner, playbook=planned.playbook))
    return Decisions(checks=finalize(checks, criteria, strict=strict),
                     pockets=_dedupe(found_by["eval"]), traffic_pockets=_dedupe(found_by[TRAFFIC]))


def table_confidence(rubric: RubricSpec) -> float:
    """The level of the slice table's CI: that of the rubric's first criterion on the slices
    (``slices``/``all``), else of its first criterion, else 0.90 (1 - 2 alpha at 0.05)."""
    on_slices = [c for c in rubric.criteria if c.scope in ("slices", "all")]
    return next((c.confidence for c in (*on_slices, *rubric.criteria)), 0.90)


def slice_table(metric: Metric, inputs: GateInputs, confidence: float = 0.90) -> list[SliceRow]:
    """Per-slice rows of ``metric``: n, teacher, student, delta and its CI at ``confidence`` (no
    verdict yet; :func:`with_verdicts` adds them once the checks are decided)."""
    from harness import stats

    s_all = inputs.per_example(metric, inputs.student)
    t_all = inputs.per_example(metric, inputs.ctx.teacher)
    rows = []
    for name, idx in inputs.slices.items():
        s, t = s_all[idx], t_all[idx]
        test = stats.compare_test(student=s, reference=t, compare="teacher_delta",
                                  bound="min" if metric.higher_is_better else "max",
                                  threshold=0.0, binary=metric.binary, confidence=confidence,
                                  seed=0)
        rows.append(SliceRow(slice=name, n=int(len(idx)), metric=metric.name,
                             higher_is_better=metric.higher_is_better, teacher=float(t.mean()),
                             student=float(s.mean()), delta=float(s.mean() - t.mean()),
                             ci=(float(test.ci[0]), float(test.ci[1])), confidence=confidence))
    return rows


#: A slice's verdict is its worst check's, in this order (``error`` below ``fail``: a failing
#: slice stays ``fail`` when another of its checks errored, and names that check).
SLICE_RANK = {"fail": 5, "error": 4, "inconclusive": 3, "warn": 2, "pass": 1}


def with_verdicts(rows: Sequence[SliceRow], checks: Sequence[Check]) -> list[SliceRow]:
    """``rows`` with each slice's verdict over the decided ``checks`` on it."""
    out = []
    for row in rows:
        on = [c for c in checks if c.slice == row.slice]
        worst = max((c.verdict for c in on), key=SLICE_RANK.__getitem__, default="")
        errors = tuple(c.id for c in on if c.verdict == "error") if worst != "error" else ()
        out.append(replace(row, verdict=worst, errors=errors))
    return out


def _dedupe(pockets: list[Pocket]) -> list[Pocket]:
    """Each pocket once (two criteria may find the same slice), first finding kept."""
    seen: set[str] = set()
    out = []
    for p in pockets:
        if p.slice not in seen:
            seen.add(p.slice)
            out.append(p)
    return out


def finalize(checks: list[Check], criteria: Mapping[str, Criterion], *, strict: bool) -> list[Check]:
    """BH across per-slice checks, then each check's verdict and message."""
    from harness import stats

    # Two families, each with its own Benjamini–Hochberg: the eval data's per-slice and
    # discovered checks, and the traffic sample's (adding traffic does not move eval q-values).
    qmap: dict[int, float | None] = {}
    # A check over every row (overall, the whole traffic sample) is decided at alpha alone.
    for traffic in (False, True):
        family = [i for i, ch in enumerate(checks)
                  if ch.verdict == "pending" and ch.kind != WHOLE
                  and ch.p_value is not None and (ch.scope == TRAFFIC) == traffic]
        qs = stats.bh_adjust([checks[i].p_value for i in family])
        qmap.update(zip(family, qs, strict=True))
    out: list[Check] = []
    for i, ch in enumerate(checks):
        c = criteria[ch.criterion]
        if ch.verdict == "pending":
            q = qmap.get(i)
            testable = bool(ch.extra.get("testable", True)) and ch.p_value is not None
            floor = min_support_of(ch, c)
            verdict = decide(value=ch.value, min=c.min, max=c.max, n=ch.n,
                             min_support=floor, severity=c.severity, decision=c.decision,
                             alpha=c.alpha, p_value=ch.p_value, q_value=q, testable=testable,
                             strict=strict)
            lenient = decide(value=ch.value, min=c.min, max=c.max, n=ch.n,
                             min_support=floor, severity=c.severity, decision=c.decision,
                             alpha=c.alpha, p_value=ch.p_value, q_value=q, testable=testable)
            # "needed" belongs to checks the data could not decide (also under --distill-strict).
            ch = replace(ch, q_value=q, verdict=verdict,
                         needed=ch.needed if lenient == "inconclusive" else None)
        extra = {k: v for k, v in ch.extra.items() if k != "testable"}
        if ch.ci is not None:  # the level of the printed interval (DESIGN, "Verdicts")
            extra["confidence"] = c.confidence
        ch = replace(ch, message=ch.message or explain(ch, c), extra=extra)
        out.append(ch)
    return out


def min_support_of(ch: Check, c: Criterion) -> int:
    """The check's minimum support: its slice's own (``extra["min_support"]``), else the
    criterion's."""
    own = ch.extra.get("min_support")
    return own if isinstance(own, int) and not isinstance(own, bool) else c.min_support


def explain(ch: Check, c: Criterion) -> str:
    """The one-paragraph explanation a failing item prints."""
    bounds = " and ".join(f"{k} {adaptive(v)}" for k, v in ch.threshold.items())
    what = {"value": "", "teacher_delta": " (student - teacher)", "teacher_ratio":
            " (student / teacher)", "baseline_delta": " (student - baseline)",
            "baseline_ratio": " (student / baseline)"}[ch.compare]
    if ch.extra.get("model") == "teacher":  # model: teacher — the teacher's own output health
        what = " (the teacher's own)"
    pin = ch.extra.get("against")
    if pin:  # a pinned baseline: say which, so "baseline" is not read as the current one
        what = what.replace("baseline", f"baseline@{pin}")
    parts = [f"{ch.metric}{what} = {adaptive(ch.value)}"]
    if ch.ci is not None:
        parts.append(f"{100 * c.confidence:.4g}% CI [{adaptive(ch.ci[0])}, {adaptive(ch.ci[1])}]")
    parts.append(f"n={ch.n}")
    head = ", ".join(parts) + f"; threshold {bounds}"
    if ch.student is not None and ch.reference is not None:
        ref = f"{compare_mode(ch.compare).reference}" + (f"@{pin}" if pin else "")
        head += f"; student {adaptive(ch.student)} vs {ref} {adaptive(ch.reference)}"
    if ch.test:
        head += f"; test: {ch.test}"
    if ch.p_value is not None:
        head += f"; p={adaptive(ch.p_value)}"
    if ch.q_value is not None:
        head += f", q={adaptive(ch.q_value)} (BH)"
    pocket_check = ch.kind == DISCOVERED
    found = ch.extra.get("pockets") if pocket_check else None
    if found:
        head += "; confirmed pockets: " + ", ".join(
            f"{pk['slice']} (n={pk['n']}, delta {pk['delta']:+.3f}, q={adaptive(pk['q_value'])})"
            for pk in found)
    elif pocket_check and ch.verdict == "pass":
        head += "; no confirmed pocket breaches the threshold"
    verdict = ch.verdict
    if verdict == "pass":
        tail = "meets the threshold"
    elif verdict == "fail":
        if ch.decision == "point" or ch.p_value is None:
            tail = "breaches the threshold"
        else:
            tail = f"breaches the threshold significantly (alpha {c.alpha})"
    elif verdict == "inconclusive":
        if ch.n < (floor := min_support_of(ch, c)):
            tail = f"breaches the threshold but n={ch.n} is below min_support {floor}"
        else:
            tail = f"breaches the threshold but not significantly at alpha {c.alpha}"
        if ch.needed:
            tail += f"; about {ch.needed} examples would decide it"
    elif verdict == "warn":
        tail = "breaches the threshold (severity: warn)"
    else:
        return ch.message
    return f"{head} -> {tail}"
