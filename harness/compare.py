"""Compare any two runs of a suite, example by example: what B gains or loses against A.

A and B are each a baseline file, a saved JSON report, or ``REV:path`` (a file at a git
revision, read with ``git show``). The rollback question "what do we lose going back to v1.4"
is ``distill compare HEAD:baselines/s.json v1.4:baselines/s.json``.

Per-example correctness needs gold labels (or references), which a baseline does not store:
its outcomes are the student's answers only, so that a pull request's diff shows exactly the
flips. The gold comes from the suite's data in the working tree — the suite is found by the
runs' suite name (``suites/<name>.yaml``, …) or given with ``--suite`` — and the runs are
paired on the example ids they share with it. A run measured on other data (its
``data_sha256`` differs) is still compared on the shared ids, with a note saying so.

A report stores no per-example outcomes either; its student's answers are read from the
prediction cache (keyed by the student's fingerprint and the data's sha256). Without them
the comparison is refused (exit 2) rather than guessed from aggregates.

The verdict of B against A uses the rubric's ``baseline_*`` criteria (A plays the baseline)
and is decided by the gate itself: the checks are planned by :func:`harness.gate.plan_checks`
and decided by :func:`harness.gate.decide_checks` (the same paired tests, Benjamini–Hochberg
across the per-slice checks, ``decision``, ``severity``, ``min_support`` and ``--strict`` as
``distill run`` decides a ``baseline_delta`` check). B is **non-inferior** when no check fails
or errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, SpecError
from harness.gate import compare_mode
from harness.report.numbers import fmt, interval, pvalue, signed
from harness.spec_types import Criterion, RubricSpec, SuiteSpec

#: Example ids shown per slice for the flips.
SHOWN_IDS = 5
#: Slices named as "lost most".
LOST_MOST = 3


class CompareError(HarnessError):
    """The two runs cannot be compared (bad file, different suites or tasks, no shared ids)."""


# --------------------------------------------------------------------------- reading a run

@dataclass(frozen=True)
class Run:
    """One side of a comparison: what a baseline or a report says about one student."""

    arg: str  # as given on the command line
    kind: str  # "baseline" | "report"
    suite: str
    task: str | None
    suite_version: str
    rubric: str  # "id v<version>"
    data_sha256: str | None
    student_fingerprint: str
    by_id: dict[str, str] | None  # the student's outcome per example id
    metric: str | None  # the primary metric of its per-slice table


def _read_bytes(arg: str, cwd: Path) -> tuple[bytes, str]:
    from harness.history import HistoryError, git, repository_root

    path = cwd / arg
    if path.is_file():
        try:
            return path.read_bytes(), arg
        except OSError as exc:
            raise CompareError(f"cannot read: {exc}", file=arg) from None
    if ":" not in arg:
        raise CompareError("file not found (expected a baseline file, a JSON report or REV:path)",
                           file=arg)
    rev, rel = arg.split(":", 1)
    if not rev or not rel:
        raise CompareError("expected REV:path, e.g. HEAD~1:baselines/s.json", file=arg)
    try:
        repository_root(cwd)
        try:
            git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd)
        except HistoryError:
            raise CompareError(f"unknown revision {rev!r} in this repository", file=arg) from None
        try:
            git(["cat-file", "-e", f"{rev}:{rel}"], cwd)
        except HistoryError:
            raise CompareError(f"{rel} does not exist at revision {rev}", file=arg) from None
        return git(["show", f"{rev}:{rel}"], cwd), arg
    except HistoryError as exc:
        raise CompareError(exc.detail, file=arg) from None


def read_run(arg: str, *, cwd: Path | None = None, suite: str | None = None) -> Run:
    """Read one side: a baseline file, a report (its suite ``suite``, or its only one) or
    ``REV:path``. :class:`CompareError` on a missing or malformed file."""
    from harness.baseline import parse_baseline
    from harness.errors import BaselineError
    from harness.spec import validate_document

    raw, shown = _read_bytes(arg, cwd or Path.cwd())
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"not a JSON baseline or report: {exc}", file=shown) from None
    if isinstance(doc, Mapping) and "outcomes" in doc:
        try:
            doc = parse_baseline(raw, shown)
        except BaselineError as exc:
            raise CompareError(exc.detail, file=shown, field=exc.field) from None
        about = doc["about"]
        overall = (about.get("slices") or {}).get("overall") or {}
        card = about.get("scorecard") or {}
        return Run(arg=arg, kind="baseline", suite=about["suite"]["name"],
                   task=about["suite"].get("task"), suite_version=str(about["suite"]["version"]),
                   rubric=f"{about['rubric']['id']} v{about['rubric']['version']}",
                   data_sha256=about["data_sha256"],
                   student_fingerprint=about["student"]["fingerprint"],
                   by_id=dict(doc["outcomes"]["by_id"]),
                   metric=card.get("primary_metric") or overall.get("metric"))
    if isinstance(doc, Mapping) and "suites" in doc:
        try:
            validate_document(doc, "report", shown)
        except SpecError as exc:
            raise CompareError(exc.detail, file=shown, field=exc.field) from None
        entries = list(doc["suites"])
        if suite is not None:
            entries = [s for s in entries if s.get("name") == suite] or entries
        if len(entries) != 1:
            names = ", ".join(str(s.get("name")) for s in doc["suites"]) or "none"
            raise CompareError(f"the report holds {len(doc['suites'])} suites ({names}); "
                               "compare it with a baseline of one of them", file=shown,
                               field="suites")
        s = entries[0]
        rows = s.get("slices") or []
        return Run(arg=arg, kind="report", suite=str(s["name"]), task=s.get("task"),
                   suite_version=str(s["version"]),
                   rubric=f"{s['rubric']['id']} v{s['rubric']['version']}",
                   data_sha256=s.get("data_sha256"),
                   student_fingerprint=str(s["student"]["fingerprint"]), by_id=None,
                   metric=rows[0].get("metric") if rows else None)
    raise CompareError("not a baseline (no 'outcomes') or a report (no 'suites')", file=shown)


# --------------------------------------------------------------------------- the comparison

@dataclass(frozen=True)
class SliceDelta:
    """The primary metric of A and B on one slice, paired on the shared ids."""

    slice: str
    n: int
    a: float | None
    b: float | None
    delta: float | None
    ci: tuple[float, float] | None
    lost: int  # right in A, wrong in B (or worse, for a graded metric)
    gained: int  # wrong in A, right in B (or better)
    lost_ids: tuple[str, ...] = ()
    gained_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.slice, "n": self.n, "a": self.a, "b": self.b, "delta": self.delta,
                "ci": list(self.ci) if self.ci else None, "lost": self.lost,
                "gained": self.gained, "lost_ids": list(self.lost_ids),
                "gained_ids": list(self.gained_ids)}


@dataclass(frozen=True)
class MarginCheck:
    """One ``baseline_*`` criterion of the rubric on one slice, with A as the baseline (the
    gate's :class:`~harness.results.Check`, as ``distill compare`` shows it)."""

    criterion: str
    slice: str
    metric: str
    compare: str
    threshold: dict[str, float]
    value: float | None
    ci: tuple[float, float] | None
    n: int
    p_value: float | None
    q_value: float | None
    verdict: str
    test: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "slice": self.slice, "metric": self.metric,
                "compare": self.compare, "threshold": dict(self.threshold), "value": self.value,
                "ci": list(self.ci) if self.ci else None, "n": self.n, "p_value": self.p_value,
                "q_value": self.q_value, "verdict": self.verdict, "test": self.test}


@dataclass
class Comparison:
    """B against A: the paired per-slice table, the margin checks and what was left out."""

    a: Run
    b: Run
    metric: str
    n: int  # shared example ids
    slices: list[SliceDelta]
    checks: list[MarginCheck]
    rubric: str
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95  # the two-sided level of the slices' CIs (the run's slice table)

    @property
    def non_inferior(self) -> bool:
        """B is non-inferior to A: no margin check fails or errors (as a run's verdict)."""
        return not any(c.verdict in ("fail", "error") for c in self.checks)

    def lost_most(self, k: int = LOST_MOST) -> list[SliceDelta]:
        """The slices (``overall`` aside) where B lost most against A, worst first."""
        losing = [s for s in self.slices if s.slice != "overall" and s.delta is not None
                  and s.delta < 0]
        return sorted(losing, key=lambda s: (s.delta, s.slice))[:k]

    def to_dict(self) -> dict[str, Any]:
        """The comparison as ``distill compare --format json`` prints it."""

        def side(r: Run) -> dict[str, Any]:
            return {"arg": r.arg, "kind": r.kind, "suite": r.suite, "suite_version": r.suite_version,
                    "rubric": r.rubric, "data_sha256": r.data_sha256,
                    "student_fingerprint": r.student_fingerprint}

        return {"a": side(self.a), "b": side(self.b), "metric": self.metric, "n": self.n,
                "rubric": self.rubric, "non_inferior": self.non_inferior,
                "verdict": "non-inferior" if self.non_inferior else "inferior",
                "slices": [s.to_dict() for s in self.slices],
                "checks": [c.to_dict() for c in self.checks],
                "lost_most": [s.slice for s in self.lost_most()], "notes": list(self.notes),
                "confidence": self.confidence}


def primary_metric(spec: SuiteSpec, runs: Sequence[Run]) -> str:
    """The metric of the per-slice table the runs recorded, else the task's primary one."""
    from harness.metrics import get_metric
    from harness.tasks import get_task

    for r in runs:
        if r.metric:
            try:
                if get_metric(r.metric).kind == "example":
                    return r.metric
            except SpecError:
                pass
    return get_task(spec.task).primary_metric


def _outputs(spec: SuiteSpec, run: Run, sub: Any) -> Any:
    """A run's stored outcomes as the task's typed outputs, in ``sub``'s example order."""
    from harness.errors import DataError
    from harness.tasks import get_task

    assert run.by_id is not None
    try:
        return get_task(spec.task).decode_outcomes(run.by_id, sub, spec)
    except DataError as exc:
        raise CompareError(exc.detail, file=run.arg) from None


def _from_cache(run: Run, spec: SuiteSpec, data: Any, cache_dir: Path | None) -> Run:
    """A report's student outcomes from the prediction cache, or CompareError."""
    import dataclasses

    pred = None
    if cache_dir is not None and run.data_sha256 == data.sha256:
        from harness.cache import PredictionCache

        try:
            pred = PredictionCache(cache_dir).load(run.student_fingerprint, data, spec.labels)
        except (OSError, ValueError, TypeError):
            pred = None
    if pred is None:
        raise CompareError("a report stores no per-example outcomes and its student's "
                           f"predictions ({run.student_fingerprint[:12]}) are not in the cache "
                           f"{cache_dir}: compare the baseline it wrote, or rerun the suite",
                           file=run.arg)
    answers = pred.labels if pred.labels is not None else pred.outputs
    assert answers is not None
    return dataclasses.replace(run, by_id=dict(zip(pred.ids, answers, strict=True)))


def _per_example(metric_name: str, spec: SuiteSpec, sub: Any, a_out: Any,
                 b_out: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    from harness.metrics import get_metric
    from harness.tasks import get_task

    metric = get_metric(metric_name)
    if metric.kind != "example":
        raise SpecError(f"{metric_name} is not a per-example metric")
    # A takes the teacher's place: a label-free metric (agreement) then compares B with A.
    ctx = get_task(spec.task).context(sub, a_out, spec)
    return metric.per_example(ctx, a_out), metric.per_example(ctx, b_out), metric.binary


def compare_runs(a: Run, b: Run, spec: SuiteSpec, *, rubric: RubricSpec | None = None,
                 cache_dir: Path | None = Path(".distill-cache"), seed: int = 0,
                 strict: bool = False) -> Comparison:
    """Pair A and B by example id on the suite's data and judge B against A.

    ``strict``: an inconclusive check fails, as under ``distill run --strict``.

    :class:`CompareError` when they are runs of different suites or tasks, when they share no
    example id with each other and the data, or when a side has no per-example outcomes.
    """
    from harness import gate
    from harness.data import build_slices
    from harness.metrics import get_metric
    from harness.tasks import get_task

    check_comparable(a, b)
    if spec.name != a.suite:
        raise CompareError(f"the runs are of suite {a.suite!r}, the suite file is "
                           f"{spec.name!r}", file=str(spec.path))
    rubric = rubric or spec.rubric
    task = get_task(spec.task)
    data = task.load_data(spec.data, spec)
    if not data.has_gold:
        raise CompareError("the suite's data names no label field: comparing correctness needs "
                           "gold labels or references", file=str(spec.path), field="data.label")
    notes: list[str] = []
    if a.by_id is None:
        a = _from_cache(a, spec, data, cache_dir)
    if b.by_id is None:
        b = _from_cache(b, spec, data, cache_dir)
    assert a.by_id is not None and b.by_id is not None
    for side, run in (("A", a), ("B", b)):
        if run.data_sha256 != data.sha256:
            notes.append(f"{side} ({run.arg}) was measured on other data "
                         f"({(run.data_sha256 or '?')[:12]}, now {data.sha256[:12]}): compared on "
                         "the ids it shares with the current data, against its gold labels")
    positions = [k for k, i in enumerate(data.ids) if i in a.by_id and i in b.by_id]
    if not positions:
        raise CompareError(f"{a.arg} and {b.arg} share no example id with each other and the "
                           "suite's data: nothing to pair")
    dropped = len(set(a.by_id) | set(b.by_id)) - len(positions)
    if dropped:
        notes.append(f"{dropped} ids are not in both runs and the data; they are left out")
    sub = data.subset(np.asarray(positions))
    ids = list(sub.ids)
    a_out, b_out = _outputs(spec, a, sub), _outputs(spec, b, sub)
    metric = primary_metric(spec, (b, a))
    slices = build_slices(spec, sub, allow_empty=True)
    a_vals, b_vals, binary = _per_example(metric, spec, sub, a_out, b_out)

    # The run's per-slice table (gate.slice_table) with A in the teacher's place, plus flips.
    nonempty = {k: np.asarray(v, dtype=int) for k, v in slices.items() if len(v)}
    ctx = task.context(sub, a_out, spec)
    table = gate.slice_table(get_metric(metric), gate.GateInputs(
        ctx=ctx, student=b_out, slices=nonempty, ids=ids),
        confidence=gate.table_confidence(rubric))
    rows = []
    for row in table:
        idx = nonempty[row.slice]
        sa, sb = a_vals[idx], b_vals[idx]
        lost_mask, gained_mask = (sa > sb), (sb > sa)
        rows.append(SliceDelta(
            slice=row.slice, n=row.n, a=row.teacher, b=row.student, delta=row.delta,
            ci=row.ci if all(np.isfinite(row.ci)) else None,
            lost=int(lost_mask.sum()), gained=int(gained_mask.sum()),
            lost_ids=tuple(ids[i] for i in idx[lost_mask][:SHOWN_IDS]),
            gained_ids=tuple(ids[i] for i in idx[gained_mask][:SHOWN_IDS])))

    criteria = [c for c in rubric.criteria if compare_mode(c.compare).with_baseline]
    if not criteria:
        notes.append(f"rubric {rubric.id} has no baseline_* criterion: B is judged on "
                     f"{metric} with margin 0 (significant loss only)")
        criteria = [Criterion(name="non_inferior", metric=metric, compare="baseline_delta",
                              scope="all", index=-1, min=0.0)]
    checks = _margin_checks(criteria, spec, sub, a_out, b_out, slices, notes, seed, strict)
    return Comparison(a=a, b=b, metric=metric, n=len(positions), slices=rows, checks=checks,
                      rubric=f"{rubric.id} v{rubric.version}", notes=notes,
                      confidence=gate.table_confidence(rubric))


def check_comparable(a: Run, b: Run) -> None:
    """:class:`CompareError` unless A and B are runs of the same suite and task."""
    if a.suite != b.suite:
        raise CompareError(f"{a.arg} is suite {a.suite!r} and {b.arg} is suite {b.suite!r}: "
                           "compare two runs of the same suite")
    if a.task and b.task and a.task != b.task:
        raise CompareError(f"{a.arg} is a {a.task} run and {b.arg} a {b.task} run: compare two "
                           "runs of the same task")


def _margin_checks(criteria: Sequence[Criterion], spec: SuiteSpec, sub: Any, a_out: Any,
                   b_out: Any, slices: Mapping[str, Any], notes: list[str], seed: int,
                   strict: bool) -> list[MarginCheck]:
    """The ``baseline_*`` checks of B with A as the baseline, planned and decided by the gate.

    A plays the teacher's part too (a label-free metric compares B with A); the checks that
    need more than the two runs' outcomes (pockets, traffic) are noted, not judged.
    """
    from harness import gate
    from harness.tasks import get_task

    rubric = RubricSpec(path=spec.rubric.path, id=spec.rubric.id, version=spec.rubric.version,
                        criteria=tuple(criteria))
    judged = [p for p in gate.plan_checks(spec.name, rubric, [k for k, v in slices.items()
                                                              if len(v)])
              if p.kind != gate.DISCOVERED and p.rows == "eval"]
    for c in criteria:
        if not any(p.criterion.name == c.name for p in judged):
            notes.append(f"criterion {c.name} (scope {c.scope}) is not judged by compare")
    for c in criteria:
        if c.against != "current":
            notes.append(f"criterion {c.name} compares with the pin {c.against!r}; compare "
                         "judges B against A instead")
    ctx = get_task(spec.task).context(sub, a_out, spec)
    inputs = gate.GateInputs(ctx=ctx, student=b_out, slices=slices, ids=list(sub.ids),
                             baseline=a_out, baselines={c.against: a_out for c in criteria},
                             seed=seed, strict=strict)
    decided = gate.decide_checks(judged, inputs, {c.name: c for c in criteria}, strict=strict)
    return [MarginCheck(criterion=c.criterion, slice=c.slice, metric=c.metric, compare=c.compare,
                        threshold=dict(c.threshold), value=c.value, ci=c.ci, n=c.n,
                        p_value=c.p_value, q_value=c.q_value, verdict=c.verdict,
                        test=c.test or c.message)
            for c in decided.checks]


# --------------------------------------------------------------------------- rendering

def verdict_line(cmp: Comparison) -> str:
    """One line: whether B is non-inferior to A, the failing checks, the slices that lost most."""
    worst = cmp.lost_most()
    lost = ", ".join(f"{s.slice} {s.delta:+.3f} (n {s.n})" for s in worst if s.delta is not None)
    if cmp.non_inferior:
        head = f"B is non-inferior to A under {cmp.rubric}"
    else:
        failing = [f"{c.criterion}[{c.slice}] {c.value:+.4f} vs {next(iter(c.threshold.items()))[0]} "
                   f"{next(iter(c.threshold.values())):+g}" for c in cmp.checks
                   if c.verdict == "fail" and c.value is not None]
        head = f"B is NOT non-inferior to A under {cmp.rubric}: {'; '.join(failing)}"
    return head + (f"; lost most: {lost}" if lost else "")


def render(cmp: Comparison, form: str) -> str:
    """``table`` (tabulate), ``markdown`` (GitHub) or ``json``."""
    if form == "json":
        return json.dumps(cmp.to_dict(), indent=2, sort_keys=True) + "\n"
    from tabulate import tabulate

    tablefmt = "github" if form == "markdown" else "simple"
    m = cmp.metric
    head = [f"A: {cmp.a.arg} (student {cmp.a.student_fingerprint[:8]}, suite v{cmp.a.suite_version},"
            f" rubric {cmp.a.rubric})",
            f"B: {cmp.b.arg} (student {cmp.b.student_fingerprint[:8]}, suite v{cmp.b.suite_version},"
            f" rubric {cmp.b.rubric})",
            f"paired on {cmp.n} example ids of suite {cmp.a.suite}"]
    if form == "markdown":
        head = [f"### distill compare: {cmp.a.suite}", ""] + [f"- {h}" for h in head]
    rows = [[s.slice, s.n, fmt(s.a), fmt(s.b), signed(s.delta),
             interval(s.ci), s.lost, s.gained,
             ", ".join(s.lost_ids) or "-"] for s in cmp.slices]
    table = tabulate(rows, headers=["slice", "n", f"A {m}", f"B {m}", "delta (B−A)",
                                    f"{100 * cmp.confidence:.4g}% CI",
                                    "lost", "gained", "lost ids"],
                     tablefmt=tablefmt, disable_numparse=True)
    crow = [[f"{c.criterion}[{c.slice}]", c.metric, c.compare,
             ", ".join(f"{k} {v:g}" for k, v in c.threshold.items()),
             "-" if c.value is None else f"{c.value:+.4f}", interval(c.ci), c.n,
             pvalue(c.p_value), pvalue(c.q_value), c.verdict] for c in cmp.checks]
    ctable = tabulate(crow, headers=["check (A as baseline)", "metric", "compare", "threshold",
                                     "value", "CI", "n", "p", "q", "verdict"],
                      tablefmt=tablefmt, disable_numparse=True)
    parts = [*head, "", table, "", ctable, ""]
    parts += [f"note: {n}" for n in cmp.notes]
    parts.append(verdict_line(cmp))  # last: the line a script or a reader looks for
    return "\n".join(parts) + "\n"
