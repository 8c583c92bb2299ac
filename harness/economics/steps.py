"""The economics steps of a suite run: timing (and its reuse), one student's scorecard with
its token economics, and the candidate students with their frontier.

Each step returns its own frozen value; the runner only puts them in order. The frontier plot
is a file: the session draws it after the run from :class:`Candidates` (no file is written
here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness import gate
from harness.economics.frontier import Candidate, pareto_frontier, recommend
from harness.economics.latency import LatencyReport, measure_latencies
from harness.economics.scorecard import METRICS, TIMING_METRICS, scorecard, with_token_costs
from harness.metrics import get_metric
from harness.models import Model
from harness.models.runs import ModelRun, Models, run_model
from harness.options import Options
from harness.outputs import EvalContext, Outputs
from harness.paths import display_path
from harness.prepared import PreparedSuite, discovery_features

_NOT_COMPUTABLE = "not computable from this run (see the economics section)"


def quality_ratio(prep: PreparedSuite, ctx: EvalContext, out: Outputs) -> float | None:
    """Student / teacher on the task's primary metric over every example (None without gold)."""
    if not ctx.has_gold:
        return None
    metric = get_metric(prep.task.primary_metric)
    idx = prep.slices["overall"]
    t = metric.value(ctx, ctx.teacher, idx)
    s = metric.value(ctx, out, idx)
    if not metric.higher_is_better:  # an error rate: the ratio of what is kept, teacher / student
        return t / s if s else None
    return s / t if t else None


def _wants_timing(prep: PreparedSuite) -> bool:
    wanted = {c.metric for c in prep.spec.rubric.criteria}
    return bool(prep.spec.economics or wanted & set(TIMING_METRICS))


# --------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Timings:
    """Student name -> its latency against the teacher (the students that could be timed)."""

    by_student: Mapping[str, LatencyReport] = field(default_factory=dict)

    def get(self, name: str) -> LatencyReport | None:
        return self.by_student.get(name)


def timing_step(prep: PreparedSuite, models: Models, options: Options) -> Timings:
    """Latency of every student that needs one, the teacher timed once for all of them.

    Nothing is timed when neither the rubric nor the suite's ``economics:`` asks for it, or
    when a model cannot be timed (a predictions file; an endpoint reports its request latency
    instead). A measurement of an unchanged (teacher, student, settings, host) is read back
    from the cache (marked ``reused``).
    """
    if not _wants_timing(prep) or not models.teacher.timeable:
        return Timings()
    todo = {name: m for name, m in models.students.items() if m.timeable}
    # A candidate listed under its own name and as the gated student is timed once.
    by_fp: dict[str, str] = {}
    for name, m in todo.items():
        by_fp.setdefault(m.fingerprint(), name)
    fresh = {name: todo[name] for fp, name in by_fp.items() if fp not in prep.latency}
    settings = prep.economics.latency_kwargs()
    fresh = _reuse_timings(prep, models.teacher, fresh, settings, options)
    if fresh:
        from harness.cache import LatencyStore

        data, labels = prep.data, list(prep.spec.labels)

        def runner(model: Model) -> Callable[[Any], Any]:
            return lambda positions: model.predict(data.subset(positions), labels)

        reports = measure_latencies(runner(models.teacher),
                                    {name: runner(m) for name, m in fresh.items()}, len(data),
                                    seed=options.seed, **settings)
        store = LatencyStore(options.cache_dir)
        for name, report in reports.items():
            prep.latency[fresh[name].fingerprint()] = report
            key = store.key(models.teacher.fingerprint(), fresh[name].fingerprint(), settings)
            store.store(key, report.to_dict())
    return Timings({name: prep.latency[m.fingerprint()] for name, m in todo.items()
                    if m.fingerprint() in prep.latency})


def _reuse_timings(prep: PreparedSuite, teacher: Model, fresh: dict[str, Model],
                   settings: dict[str, Any], options: Options) -> dict[str, Model]:
    """Read back the timings of unchanged (teacher, student, settings, host); return the rest.

    A pull request that changes only the student times the teacher against that student
    alone; the candidates it left unchanged keep their stored measurement (marked ``reused``).
    """
    from harness.cache import LatencyStore

    store = LatencyStore(options.cache_dir)
    left: dict[str, Model] = {}
    for name, model in fresh.items():
        doc = store.load(store.key(teacher.fingerprint(), model.fingerprint(), settings))
        try:
            report = LatencyReport.from_dict(doc) if doc is not None else None
        except (KeyError, TypeError, ValueError):
            report = None
        if report is None:
            left[name] = model
        else:
            prep.latency[model.fingerprint()] = report
    return left


# --------------------------------------------------------------------------- one student

@dataclass(frozen=True)
class Economics:
    """The economics section of the report, and the run-level figures the rubric can gate."""

    section: dict[str, Any]
    figures: dict[str, float]
    errors: dict[str, str]


def economics_step(prep: PreparedSuite, teacher: ModelRun, student: ModelRun,
                   latency: LatencyReport | None, quality: float | None) -> Economics:
    """Size, speed, cost and training figures of one student against the teacher.

    The runs carry measured token usage and request latencies: a model priced by the token
    (``metadata.usd_per_million_tokens``) costs its mean tokens per request, and two endpoints
    compare by their request latency.
    """
    errors: dict[str, str] = {}
    tokens = token_economics(teacher, student)
    if latency is None and tokens is None and _wants_timing(prep):
        untimed = [m for m in (teacher.model, student.model) if not m.timeable]
        why = (f"the {untimed[0].role} ({untimed[0].spec.type}) cannot be timed" if untimed
               else "not measured in this run")
        for name in TIMING_METRICS:
            errors[name] = why
    training = student.model.spec.training
    section, figures = scorecard(
        teacher=teacher.model.facts(), student=student.model.facts(), latency=latency,
        economics=prep.economics, training=training, quality_retained=quality,
        source=display_path(prep.spec.path))
    for name in METRICS:
        if name not in figures and name not in errors:
            errors[name] = _NOT_COMPUTABLE
    if tokens is not None:
        section["tokens"], token_figures = tokens
        with_token_costs(section, figures, errors, token_figures, training.usd)
    section["metrics"] = {k: v for k, v in figures.items() if k not in TIMING_METRICS}
    if isinstance(section.get("timing"), dict):
        section["timing"]["metrics"] = {k: v for k, v in figures.items() if k in TIMING_METRICS}
    return Economics(section=section, figures=dict(figures), errors=errors)


def token_economics(teacher: ModelRun, student: ModelRun
                    ) -> tuple[dict[str, Any], dict[str, float]] | None:
    """Per model: usage, token price, cost per million requests, request latency; and figures.

    Costs by the token replace the ``usd_per_hour`` ones for the models that are priced so;
    ``cost_reduction`` needs both models' cost; ``latency_improvement`` (request latency)
    needs both to be endpoints that measured their requests.
    """
    from harness.economics import tokens as tok

    block: dict[str, Any] = {}
    costs: dict[str, float] = {}
    latency: dict[str, dict[str, Any]] = {}
    for role, run in (("teacher", teacher), ("student", student)):
        pred, prices = run.predictions, run.model.spec.prices
        entry: dict[str, Any] = {"usage": pred.usage()}
        if entry["usage"] is not None:
            entry["mean_input_tokens"] = (float(np.mean(pred.input_tokens))
                                          if pred.input_tokens is not None else None)
            entry["mean_output_tokens"] = (float(np.mean(pred.output_tokens))
                                           if pred.output_tokens is not None else None)
        if prices is not None:
            entry["usd_per_million_tokens"] = {"input": prices.input, "output": prices.output}
            cost = tok.cost_per_million_requests(prices, pred.input_tokens, pred.output_tokens)
            entry["cost_per_million_requests"] = cost
            if cost is not None:
                costs[role] = cost
        if run.model.request_latency:
            lat = tok.request_latency(pred.latency_s)
            entry["request_latency"] = lat
            if lat is not None:
                latency[role] = lat
        block[role] = entry
    if not costs and not latency and all(e["usage"] is None for e in block.values()):
        return None
    figures = {f"{role}_cost_per_million": cost for role, cost in costs.items()}
    if len(latency) == 2 and latency["student"]["p50_s"] > 0:
        figures["latency_improvement"] = latency["teacher"]["p50_s"] / latency["student"]["p50_s"]
        block["latency_improvement_kind"] = "request latency (teacher p50 / student p50)"
    return block, figures


# --------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class Candidates:
    """Every candidate student scored against the rubric, the Pareto frontier of the ones with
    a quality figure and the recommended operating point (the report's ``economics`` keys)."""

    rows: tuple[dict[str, Any], ...]
    valid: tuple[Candidate, ...]
    frontier: tuple[str, ...]
    recommended: str | None
    gated: str

    def section(self) -> dict[str, Any]:
        """The keys this step adds to the report's ``economics`` section."""
        return {"candidates": [dict(r) for r in self.rows], "frontier": list(self.frontier),
                "recommended": self.recommended, "gated_student": self.gated}


def candidates_step(prep: PreparedSuite, models: Models, ctx: EvalContext, options: Options,
                    cache: Any, timings: Timings, teacher_run: ModelRun) -> Candidates | None:
    """Score every candidate student; Pareto frontier and the recommended operating point.

    None with a single student. Candidates are judged on every planned check that neither
    compares with a baseline (the baseline is the gated student's) nor reads traffic.
    """
    if len(models.students) < 2:
        return None
    spec, data = prep.spec, prep.data
    plan = [p for p in prep.plan if not gate.compare_mode(p.criterion.compare).with_baseline
            and p.rows != gate.TRAFFIC]
    criteria = {c.name: c for c in spec.rubric.criteria}
    features = discovery_features(spec, data)
    gated = models.gated
    named = {m.fingerprint() for n, m in models.students.items() if n != gated}
    candidates: list[Candidate] = []
    rows: list[dict[str, Any]] = []
    for name, model in models.students.items():
        if name == gated and name == "student" and model.fingerprint() in named:
            continue  # the gated student is also listed as a candidate under its own name
        run = run_model(model, prep.model_data, len(data), prep.task, spec, options, cache)
        quality = quality_ratio(prep, ctx, run.outputs)
        latency = timings.get(name)
        econ = economics_step(prep, teacher_run, run, latency, quality)
        inputs = gate.GateInputs(ctx=ctx, student=run.outputs, slices=prep.slices, ids=data.ids,
                                 suite_metrics=econ.figures, suite_metric_errors=econ.errors,
                                 features=features, discovery=spec.discovery, seed=options.seed)
        checks = gate.decide_checks(plan, inputs, criteria, strict=options.strict).checks
        passes = all(c.verdict not in ("fail", "error") for c in checks)
        facts = model.facts()
        p50 = latency.per_batch[-1].student_p50 if latency is not None and latency.per_batch \
            else None
        candidates.append(Candidate(
            name=name, quality_ratio=float(quality if quality is not None else float("nan")),
            # Unmeasured (a predictions-file model): a constant, so the frontier is decided by
            # quality and size alone.
            latency=float(p50) if p50 is not None else 0.0,
            size=float(facts.params or facts.bytes or 0), passes=passes,
            cost_per_million=econ.figures.get("student_cost_per_million")))
        rows.append({"name": name, "fingerprint": model.fingerprint(), "params": facts.params,
                     "bytes": facts.bytes, "quality_ratio": quality, "passes": passes,
                     "failing": [c.id for c in checks if c.verdict in ("fail", "error")],
                     "metrics": dict(econ.figures), "timing": econ.section.get("timing")})
    valid = [c for c in candidates if c.quality_ratio == c.quality_ratio]
    return Candidates(rows=tuple(rows), valid=tuple(valid),
                      frontier=tuple(pareto_frontier(valid)) if valid else (),
                      recommended=recommend(valid) if valid else None, gated=gated)
