"""One suite run, end to end: spec -> data -> models -> metrics -> gate -> :class:`SuiteResult`.

Two phases, so the pytest glue can name its items before any model runs:
:func:`prepare_suite` loads and checks the suite, its rubric, its data and its slices and
plans the checks; :func:`run_prepared` runs the models (through the prediction cache) and
decides every check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import gate
from harness.data import Dataset, build_slices, load_dataset
from harness.errors import BaselineError, SpecError
from harness.metrics import EvalContext, Outputs, get_metric
from harness.models import Model, Predictions, load_model
from harness.options import Options
from harness.results import Check, ModelInfo, SuiteResult
from harness.spec import display_path, load_suite
from harness.spec_types import SuiteSpec


@dataclass
class PreparedSuite:
    spec: SuiteSpec
    data: Dataset
    slices: dict[str, np.ndarray]
    plan: list[gate.PlannedCheck]
    distill_data: Dataset | None = None
    notes: list[str] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)  # student fingerprint -> timing


def prepare_suite(path: Path, options: Options | None = None) -> PreparedSuite:
    """Load the suite at ``path`` and everything it names; plan its checks. No model runs."""
    spec = load_suite(Path(path))
    labels = spec.labels if spec.task == "classification" else None
    data = load_dataset(spec.data, labels)
    slices = build_slices(spec, data)
    distill = None
    if spec.distillation_data is not None:
        distill = load_dataset(spec.distillation_data, labels)
    plan = gate.plan_checks(spec.name, spec.rubric, list(slices))
    for c in spec.rubric.criteria:
        metric = get_metric(c.metric)
        if metric.needs_gold and data.labels is None and spec.task == "classification":
            raise SpecError(f"criterion {c.name!r} uses {c.metric}, which needs gold labels; "
                            "the suite's data names no label field",
                            file=display_path(spec.rubric.path), field=f"criteria[{c.index}].metric")
    return PreparedSuite(spec=spec, data=data, slices=slices, plan=plan, distill_data=distill)


def _encode(pred: Predictions, labels: tuple[str, ...]) -> Outputs:
    if pred.labels is None:
        return Outputs(labels=None, scores=None, texts=pred.outputs)
    index = {lab: i for i, lab in enumerate(labels)}
    codes = np.fromiter((index[lab] for lab in pred.labels), dtype=int, count=len(pred.labels))
    return Outputs(labels=codes, scores=pred.scores)


def _progress(options: Options, label: str) -> Any:
    from harness.progress import make_progress

    return make_progress(label, enabled=None if options.progress else False)


def _predict(model: Model, data: Dataset, labels: tuple[str, ...], options: Options,
             cache: Any) -> tuple[Predictions, bool]:
    from harness.cache import predict_cached

    # Parallel runs (pytest-xdist workers) evaluate the same suite at once: the lock makes the
    # second one wait and then read the first one's cached outputs instead of running the model.
    with _model_lock(options.cache_dir, model.fingerprint(), data.sha256):
        return predict_cached(model, data, list(labels), cache, _progress(options, model.role))


@contextmanager
def _model_lock(cache_dir: Path | None, fingerprint: str, data_sha: str) -> Iterator[None]:
    if cache_dir is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, the cache still works
        yield
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock_path = cache_dir / f".{fingerprint[:16]}-{data_sha[:16]}.lock"
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_prepared(prep: PreparedSuite, options: Options | None = None) -> SuiteResult:
    """Run teacher and student(s) and decide every planned check."""
    from harness.cache import PredictionCache

    options = options or Options()
    spec, data = prep.spec, prep.data
    labels = spec.labels
    cache = PredictionCache(options.cache_dir)
    teacher = load_model(spec.teacher, "teacher", options)
    student_name = next(iter(spec.students))
    students = {name: load_model(ms, name if name != "student" else "student", options)
                for name, ms in spec.students.items()}
    student = students[student_name]
    try:
        t_pred, t_cached = _predict(teacher, data, labels, options, cache)
        s_pred, s_cached = _predict(student, data, labels, options, cache)
        t_out, s_out = _encode(t_pred, labels), _encode(s_pred, labels)
        gold = None
        if data.labels is not None and labels:
            index = {lab: i for i, lab in enumerate(labels)}
            gold = np.fromiter((index[g] for g in data.labels), dtype=int, count=len(data))
        references = data.labels if spec.task == "generation" else None
        ctx = EvalContext(labels=labels, gold=gold, teacher=t_out, references=references)

        result = SuiteResult(
            name=spec.name, version=spec.version, task=spec.task,
            path=_repo_path(spec.path, spec.root), n=len(data), data_sha256=data.sha256,
            rubric={"id": spec.rubric.id, "version": spec.rubric.version,
                    "path": _repo_path(spec.rubric.path, spec.root),
                    "lines": {c.name: c.line for c in spec.rubric.criteria if c.line}},
            teacher=_info(teacher, "teacher", t_cached),
            student=_info(student, "student", s_cached),
            notes=list(prep.notes),
        )
        for entry in getattr(cache, "recomputed", []):
            result.notes.append(f"corrupt cache entry {display_path(entry)} was recomputed")

        # Baseline (stored student outcomes), when a criterion compares with it or on update.
        baseline_out, baseline_error = None, None
        needs_baseline = any(c.compare.startswith("baseline") for c in spec.rubric.criteria)
        result.baseline = {"path": _repo_path(spec.baseline_path, spec.root)}
        if needs_baseline and not options.update_baselines:
            baseline_out, baseline_error = _load_baseline(spec, data, result)

        # Run-level figures: economics and coverage.
        suite_metrics: dict[str, float] = {}
        suite_errors: dict[str, str] = {}
        quality = _quality_ratio(ctx, s_out, prep)
        _economics(prep, teacher, student, options, result, suite_metrics, suite_errors, quality)
        _coverage(prep, teacher, ctx, s_out, result, suite_metrics, suite_errors, options)
        if gold is not None:
            _audit(prep, t_pred, s_pred, result)

        inputs = gate.GateInputs(
            ctx=ctx, student=s_out, slices=prep.slices, ids=data.ids, baseline=baseline_out,
            baseline_error=baseline_error, suite_metrics=suite_metrics,
            suite_metric_errors=suite_errors, features=_discovery_features(prep),
            discovery=spec.discovery, seed=options.seed, strict=options.strict)
        result.checks = _decide(prep, inputs, result, options)
        result.slices = _slice_table(prep, inputs, result.checks)
        from harness import coverage

        support = coverage.support_gaps(
            result.checks, min_support={c.name: c.min_support for c in spec.rubric.criteria})
        result.coverage_gaps = support + result.coverage_gaps

        if len(students) > 1:
            _candidates(prep, students, teacher, ctx, options, cache, result, student_name)

        if options.update_baselines:
            from harness import baseline as baseline_mod

            state = baseline_mod.write_baseline(spec, result, data, s_pred)
            result.baseline.update({"written": state})
            if needs_baseline:
                # Compare with what was just written: the baseline checks now pass by construction.
                baseline_out, baseline_error = _load_baseline(spec, data, result)
                inputs.baseline, inputs.baseline_error = baseline_out, baseline_error
                result.checks = _decide(prep, inputs, result, options)
        return result
    finally:
        teacher.close()
        for m in students.values():
            m.close()


def run_suite(path: Path, options: Options | None = None) -> SuiteResult:
    """:func:`prepare_suite` then :func:`run_prepared`."""
    return run_prepared(prepare_suite(path, options), options)


def _repo_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _info(model: Model, role: str, cached: bool) -> ModelInfo:
    facts = model.facts()
    return ModelInfo(role=role, fingerprint=model.fingerprint(), params=facts.params,
                     bytes=facts.bytes, type=model.spec.type, cached=cached)


def _load_baseline(spec: SuiteSpec, data: Dataset,
                   result: SuiteResult) -> tuple[Outputs | None, str | None]:
    from harness import baseline as baseline_mod

    try:
        stored = baseline_mod.load_baseline(spec, data)
    except BaselineError as exc:
        return None, str(exc)
    summary = stored.summary(result.teacher.fingerprint)
    result.baseline.update(summary)
    if summary["teacher_changed"]:
        result.notes.append(f"{summary['path']}: the teacher changed since this baseline was written "
                            "(teacher comparisons use the current teacher)")
    return stored.outputs(data, spec.labels), None


def _decide(prep: PreparedSuite, inputs: gate.GateInputs, result: SuiteResult,
            options: Options) -> list[Check]:
    checks: list[Check] = []
    pockets = []
    for planned in prep.plan:
        if planned.criterion.scope == "discovered":
            check, found = gate.discovered_check(planned, inputs)
            pockets.extend(found)
        else:
            check = gate.evaluate_check(planned, inputs)
        checks.append(check)
    result.pockets = _dedupe_pockets(pockets)
    criteria = {c.name: c for c in prep.spec.rubric.criteria}
    return gate.finalize(checks, criteria, strict=options.strict)


def _dedupe_pockets(pockets: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for p in pockets:
        if p.slice not in seen:
            seen.add(p.slice)
            out.append(p)
    return out


def _discovery_features(prep: PreparedSuite) -> dict[str, np.ndarray]:
    spec, data = prep.spec, prep.data
    names = spec.discovery.features if spec.discovery.features is not None else spec.data.features
    feats: dict[str, np.ndarray] = {}
    for name in names:
        if name in data.features:
            feats[name] = data.features[name]
        else:
            col = np.empty(len(data), dtype=object)
            col[:] = [r.get(name) for r in data.records]
            if all(v is None for v in col):
                raise SpecError(f"discovery feature {name!r} is not in the data",
                                file=display_path(spec.path), field="discovery.features")
            feats[name] = col
    if spec.discovery.include_length:
        feats["input_words"] = np.array([len(t.split()) for t in data.texts()], dtype=float)
    return feats


def _primary_metric(ctx: EvalContext) -> str:
    return "accuracy" if ctx.gold is not None else "agreement"


def _quality_ratio(ctx: EvalContext, s_out: Outputs, prep: PreparedSuite) -> float | None:
    if ctx.gold is None:
        return None
    metric = get_metric("accuracy")
    idx = prep.slices["overall"]
    t = metric.value(ctx, ctx.teacher, idx)
    return metric.value(ctx, s_out, idx) / t if t else None


def _slice_table(prep: PreparedSuite, inputs: gate.GateInputs,
                 checks: list[Check]) -> list[dict[str, Any]]:
    """Per-slice rows of the terminal table: n, teacher, student, delta, CI, worst verdict."""
    from harness import stats

    metric = get_metric(_primary_metric(inputs.ctx))
    s_all = inputs.per_example(metric, inputs.student)
    t_all = inputs.per_example(metric, inputs.ctx.teacher)
    rank = {"error": 5, "fail": 4, "inconclusive": 3, "warn": 2, "pass": 1}
    rows = []
    for name, idx in prep.slices.items():
        s, t = s_all[idx], t_all[idx]
        conf = 0.95
        test = stats.compare_test(student=s, reference=t, compare="teacher_delta", bound="min",
                                  threshold=0.0, binary=metric.binary, confidence=conf, seed=0)
        verdicts = [c.verdict for c in checks if c.slice == name]
        worst = max(verdicts, key=lambda v: rank[v]) if verdicts else ""
        rows.append({"slice": name, "n": int(len(idx)), "metric": metric.name,
                     "teacher": float(t.mean()), "student": float(s.mean()),
                     "delta": float(s.mean() - t.mean()),
                     "ci": [float(test.ci[0]), float(test.ci[1])], "verdict": worst})
    return rows


# --------------------------------------------------------------------------- analyses

def _economics(prep: PreparedSuite, teacher: Model, student: Model, options: Options,
               result: SuiteResult, metrics: dict[str, float], errors: dict[str, str],
               quality: float | None) -> None:
    from harness import economics

    spec = prep.spec
    wanted = {c.metric for c in spec.rubric.criteria}
    settings = economics.parse_economics(spec.economics, display_path(spec.path))
    latency = None
    if spec.economics or wanted & set(economics.TIMING_METRICS):
        timeable = all(m.spec.type != "predictions" for m in (teacher, student))
        if not timeable:
            for name in economics.TIMING_METRICS:
                errors[name] = "a predictions-file model cannot be timed"
        else:
            latency = _measure(prep, teacher, student, settings, options)
    training = student.spec.metadata.get("training")
    section, figures = economics.scorecard(
        teacher=teacher.facts(), student=student.facts(), latency=latency, economics=settings,
        training=training, quality_retained=quality, source=display_path(spec.path))
    metrics.update(figures)
    for name in economics.METRICS:
        if name not in figures and name not in errors:
            errors[name] = "not computable from this run (see the economics section)"
    section["metrics"] = {k: v for k, v in figures.items() if k not in economics.TIMING_METRICS}
    if isinstance(section.get("timing"), dict):
        section["timing"]["metrics"] = {k: v for k, v in figures.items()
                                        if k in economics.TIMING_METRICS}
    result.economics = section


def _measure(prep: PreparedSuite, teacher: Model, student: Model, settings: Any,
             options: Options) -> Any:
    """Time teacher against student (once per student fingerprint in a run)."""
    from harness import economics

    key = student.fingerprint()
    if key in prep.latency:
        return prep.latency[key]
    data, labels = prep.data, prep.spec.labels

    def runner(model: Model) -> Any:
        def run(positions: Any) -> Any:
            return model.predict(data.subset(positions), list(labels))
        return run

    report = economics.measure_latency(runner(teacher), runner(student), len(data),
                                       seed=options.seed, **settings.latency_kwargs())
    prep.latency[key] = report
    return report


def _coverage(prep: PreparedSuite, teacher: Model, ctx: EvalContext, s_out: Outputs,
              result: SuiteResult, metrics: dict[str, float], errors: dict[str, str],
              options: Options) -> None:
    from harness import coverage

    if prep.distill_data is None:
        errors["uncovered_fraction"] = "the suite declares no distillation_data"
        return
    spec, data, distill = prep.spec, prep.data, prep.distill_data
    eval_slices = {k: v for k, v in prep.slices.items() if k != "overall"}
    distill_slices = {k: v for k, v in build_slices(spec, distill, allow_empty=True).items()
                      if k != "overall"}
    for name in eval_slices:  # a by: value absent from the distillation data is a gap too
        distill_slices.setdefault(name, np.array([], dtype=int))
    shared = [f for f in spec.data.features if f in distill.features]
    gaps = coverage.distillation_gaps(
        {f: data.features[f] for f in shared}, {f: distill.features[f] for f in shared},
        eval_slices=eval_slices, distill_slices=distill_slices, n_eval=len(data),
        n_distill=len(distill))
    gap = None
    if ctx.gold is not None:
        correct = get_metric("accuracy")
        gap = correct.per_example(ctx, s_out) - correct.per_example(ctx, ctx.teacher)
    emb_settings = (spec.raw.get("coverage") or {})
    eval_vectors = distill_vectors = None
    if emb_settings.get("embeddings") == "teacher":
        eval_vectors = teacher.embed(data.texts())
        distill_vectors = teacher.embed(distill.texts()) if eval_vectors is not None else None
    summary, emb_gaps = coverage.embedding_coverage(
        data.texts(), distill.texts(), gap=gap, ids=list(data.ids), eval_vectors=eval_vectors,
        distill_vectors=distill_vectors, quantile=float(emb_settings.get("quantile", 0.95)),
        seed=options.seed)
    metrics["uncovered_fraction"] = float(summary.uncovered_fraction)
    result.coverage = summary.to_dict()
    result.coverage_gaps = [*gaps, *emb_gaps]


def _audit(prep: PreparedSuite, t_pred: Predictions, s_pred: Predictions,
           result: SuiteResult) -> None:
    from harness import audit

    data = prep.data
    assert data.labels is not None and t_pred.labels is not None and s_pred.labels is not None
    result.teacher_audit = audit.audit_teacher(
        ids=list(data.ids), gold=list(data.labels), teacher_labels=list(t_pred.labels),
        student_labels=list(s_pred.labels), labels=list(prep.spec.labels),
        teacher_scores=t_pred.scores,
        slices={k: v for k, v in prep.slices.items() if k != "overall"},
        floor=prep.spec.rubric.teacher_floor)


def _candidates(prep: PreparedSuite, students: dict[str, Model], teacher: Model,
                ctx: EvalContext, options: Options, cache: Any, result: SuiteResult,
                gated: str) -> None:
    """Score every candidate student; Pareto frontier and the recommended operating point."""
    from harness import economics

    spec, data = prep.spec, prep.data
    settings = economics.parse_economics(spec.economics, display_path(spec.path))
    candidates = []
    rows = []
    no_baseline = [p for p in prep.plan if not p.criterion.compare.startswith("baseline")]
    criteria = {c.name: c for c in spec.rubric.criteria}
    features = _discovery_features(prep)
    named = {m.fingerprint() for n, m in students.items() if n != gated}
    for name, model in students.items():
        if name == gated and name == "student" and model.fingerprint() in named:
            continue  # the gated student is also listed as a candidate under its own name
        pred, _ = _predict(model, data, spec.labels, options, cache)
        out = _encode(pred, spec.labels)
        quality = _quality_ratio(ctx, out, prep)
        latency = None
        if model.spec.type != "predictions" and teacher.spec.type != "predictions":
            latency = _measure(prep, teacher, model, settings, options)
        section, figures = economics.scorecard(
            teacher=teacher.facts(), student=model.facts(), latency=latency, economics=settings,
            training=model.spec.metadata.get("training"), quality_retained=quality,
            source=display_path(spec.path))
        inputs = gate.GateInputs(ctx=ctx, student=out, slices=prep.slices, ids=data.ids,
                                 suite_metrics=figures, features=features,
                                 discovery=spec.discovery, seed=options.seed)
        checks = []
        for planned in no_baseline:
            if planned.criterion.scope == "discovered":
                checks.append(gate.discovered_check(planned, inputs)[0])
            else:
                checks.append(gate.evaluate_check(planned, inputs))
        checks = gate.finalize(checks, criteria, strict=options.strict)
        passes = all(c.verdict not in ("fail", "error") for c in checks)
        facts = model.facts()
        p50 = None
        if latency is not None and latency.per_batch:
            p50 = latency.per_batch[-1].student_p50
        cost = figures.get("student_cost_per_million")
        size = float(facts.params or facts.bytes or 0)
        candidates.append(economics.Candidate(
            name=name, quality_ratio=float(quality if quality is not None else float("nan")),
            # Unmeasured (a predictions-file model): a constant, so the frontier is decided by
            # quality and size alone.
            latency=float(p50) if p50 is not None else 0.0, size=size, passes=passes,
            cost_per_million=cost))
        rows.append({"name": name, "fingerprint": model.fingerprint(), "params": facts.params,
                     "bytes": facts.bytes, "quality_ratio": quality, "passes": passes,
                     "failing": [c.id for c in checks if c.verdict in ("fail", "error")],
                     "metrics": {k: v for k, v in figures.items()},
                     "timing": section.get("timing")})
    valid = [c for c in candidates if c.quality_ratio == c.quality_ratio]
    frontier = economics.pareto_frontier(valid) if valid else []
    recommended = economics.recommend(valid) if valid else None
    result.economics["candidates"] = rows
    result.economics["frontier"] = frontier
    result.economics["recommended"] = recommended
    result.economics["gated_student"] = gated
    plot_dir = options.report_path.parent if options.report_path else None
    if plot_dir is not None:
        png = economics.frontier_plot(valid, frontier, recommended,
                                      plot_dir / f"{spec.name}-frontier.png")
        if png is not None:
            result.economics["frontier_plot"] = png.name
