"""One suite run, end to end: spec -> data -> models -> steps -> gate -> :class:`SuiteResult`.

Two phases, so the pytest glue can name its items before any model runs:
:func:`prepare_suite` loads and checks the suite, its rubric, its data and its slices and
plans the checks (no model is loaded); :func:`run_prepared` runs the models (through the
prediction cache) and decides every check.

This module is the sequence and nothing else. Each step lives in the module that owns its noun
and returns its own frozen value: the models' outputs (:mod:`harness.models.runs`), timing,
economics and candidates (:mod:`harness.economics.steps`), coverage
(:func:`harness.coverage.coverage_step`), the teacher audit (the task's), traffic
(:func:`harness.traffic.traffic_step`), the baseline (:func:`harness.baseline.baseline_step`,
read once) and the checks (:func:`harness.gate.decide_checks`, run once, also under
``--update-baselines``). :class:`SuiteResult` is put together once, at the end. What a run
writes besides the baseline (the frontier plot) and what it reads from git (the trend) are the
session's, after the run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness import baseline as baselines
from harness import gate
from harness.coverage import coverage_step, support_gaps
from harness.data import build_slices
from harness.economics.steps import (
    candidates_step,
    economics_step,
    quality_ratio,
    timing_step,
)
from harness.errors import SpecError
from harness.judges import judges_step
from harness.metrics import get_metric
from harness.models.runs import ModelRun, load_models, run_model
from harness.options import Options
from harness.paths import display_path, repo_path
from harness.prepared import PreparedSuite, discovery_features, slice_owners, slice_supports
from harness.results import SuiteResult
from harness.spec import load_suite
from harness.spec_types import SuiteSpec
from harness.tasks import get_task
from harness.traffic import TrafficOutcome, traffic_step


def prepare_suite(path: Path, options: Options | None = None, *,
                  spec: SuiteSpec | None = None) -> PreparedSuite:
    """Load the suite at ``path`` (or take ``spec``, loaded from it) and everything it names;
    plan its checks. No model runs."""
    spec = spec if spec is not None else load_suite(Path(path))
    task = get_task(spec.task)
    data = task.load_data(spec.data, spec)
    slices = build_slices(spec, data)
    traffic, traffic_slices = None, {}
    if spec.traffic_data is not None:
        traffic = task.load_data(spec.traffic_data, spec)
        shared = set(traffic.ids) & set(data.ids)
        if shared:
            raise SpecError(f"traffic_data and data share {len(shared)} example id(s), e.g. "
                            f"{sorted(shared)[0]!r}; ids must be distinct across the two",
                            file=display_path(spec.path), field="traffic_data.id")
        traffic_slices = {k: v for k, v in build_slices(spec, traffic, allow_empty=True).items()
                          if len(v)}
    plan = gate.plan_checks(spec.name, spec.rubric, list(slices),
                            traffic_slices=[k for k in traffic_slices if k != "overall"],
                            slice_owners=slice_owners(spec, data, slices),
                            pockets=spec.discovery.enabled,
                            slice_support=slice_supports(spec, data, slices))
    # The distillation data are loaded when coverage needs them (prep.distillation()).
    prep = PreparedSuite(spec=spec, data=data, slices=slices, plan=plan,
                         traffic_data=traffic, traffic_slices=traffic_slices,
                         notes=list(spec.rubric.notes))
    models = load_models(spec, options or Options())
    try:
        for model in (models.teacher, *models.students.values()):
            model.validate(prep.model_data, spec.labels)
    finally:
        models.close()
    return prep


def run_prepared(prep: PreparedSuite, options: Options | None = None) -> SuiteResult:
    """Run teacher and student(s) and decide every planned check."""
    from harness.metric_store import metric_store

    options = options or Options()
    with metric_store(options.cache_dir):  # text metric values are kept with the outputs
        return _run_prepared(prep, options)


def _run_prepared(prep: PreparedSuite, options: Options | None = None) -> SuiteResult:
    from harness.cache import PredictionCache

    options = options or Options()
    spec, data, task = prep.spec, prep.data, prep.task
    cache = PredictionCache(options.cache_dir)
    models = load_models(spec, options)
    try:
        # --- models
        teacher = run_model(models.teacher, prep.model_data, len(data), task, spec, options, cache)
        student = run_model(models.student, prep.model_data, len(data), task, spec, options, cache)
        notes = [*prep.notes, *(f"corrupt cache entry {display_path(entry)} was recomputed"
                                for entry in getattr(cache, "recomputed", []))]
        teacher_info, student_info = teacher.info("teacher", task), student.info("student", task)
        ctx = task.context(data, teacher.outputs, spec)

        # --- steps that need no verdict
        timings = timing_step(prep, models, options)
        econ = economics_step(prep, teacher, student, timings.get(models.gated),
                              quality_ratio(prep, ctx, student.outputs))
        cover = coverage_step(prep, models.teacher, ctx, student.outputs, options.seed)
        audit = (task.audit(data=data, ctx=ctx, teacher=teacher.predictions,
                            student=student.predictions, slices=prep.declared_slices, suite=spec)
                 if ctx.has_gold else {})
        traffic = traffic_step(prep, teacher, student, options.seed, options.strict)
        # judges: their verdicts become the per-example values of judge:<name>
        judged = judges_step(spec, data, teacher, student, options)
        s_out = student.outputs
        if judged.results:
            ctx = dataclasses.replace(ctx, teacher=dataclasses.replace(
                ctx.teacher, judged=judged.teacher_values()))
            s_out = dataclasses.replace(s_out, judged=judged.student_values())
            audit = judged.audit(audit)
        inputs = gate.GateInputs(
            ctx=ctx, student=s_out, slices=prep.slices, ids=data.ids,
            suite_metrics={**econ.figures, **cover.figures, **judged.figures()},
            suite_metric_errors={**econ.errors, **cover.errors},
            features=discovery_features(spec, data), discovery=spec.discovery,
            seed=options.seed, strict=options.strict)
        rows = gate.slice_table(get_metric(task.primary(ctx.has_gold)), inputs,
                                confidence=gate.table_confidence(spec.rubric))

        # --- the baseline, read once (under --update-baselines: the one this run writes)
        update = (baselines.RunFacts(rows, econ.section, teacher_info, student_info)
                  if options.update_baselines else None)
        stored = baselines.baseline_step(spec, data, teacher_info.fingerprint,
                                         flag=options.flag("update-baselines"), update=update,
                                         student=student.predictions)
        inputs = dataclasses.replace(inputs, baseline=stored.outputs, baseline_error=stored.error,
                                     baselines=stored.by_pin, baseline_errors=stored.errors_by_pin)

        # --- the gate, once
        decided = gate.decide_checks(prep.plan, inputs, {c.name: c for c in spec.rubric.criteria},
                                     strict=options.strict,
                                     traffic=traffic.inputs if traffic is not None else None)
        candidates = candidates_step(prep, models, ctx, options, cache, timings, teacher)
        section = (baselines.written(spec, stored, teacher_info.fingerprint) if update is not None
                   else stored.section)
        support = support_gaps(decided.checks, min_support={c.name: c.min_support
                                                            for c in spec.rubric.criteria})
        examples = _examples(prep, decided, inputs, teacher, student, traffic, options)
        return SuiteResult(
            name=spec.name, version=spec.version, task=spec.task,
            path=repo_path(spec.path, spec.root), n=len(data),
            data_sha256=data.sha256,
            rubric={"id": spec.rubric.id, "version": spec.rubric.version,
                    "path": repo_path(spec.rubric.path, spec.root),
                    "lines": {c.name: c.line for c in spec.rubric.criteria if c.line}},
            teacher=teacher_info, student=student_info, checks=decided.checks,
            slices=gate.with_verdicts(rows, decided.checks), pockets=decided.pockets,
            coverage_gaps=[*support, *cover.gaps, *(traffic.drift if traffic else ())],
            coverage=cover.summary, teacher_audit=audit,
            economics={**econ.section, **(candidates.section() if candidates else {})},
            baseline=section, notes=[*notes, *stored.notes, *judged.notes()],
            judges=judged.section(),
            traffic=({**traffic.block, "pockets": [p.to_dict() for p in decided.traffic_pockets]}
                     if traffic is not None else None),
            examples=examples, baseline_file=spec.baseline_path, candidates=candidates)
    finally:
        models.close()


def _examples(prep: PreparedSuite, decided: gate.Decisions, inputs: gate.GateInputs,
              teacher: ModelRun, student: ModelRun, traffic: TrafficOutcome | None,
              options: Options) -> dict[str, Any]:
    """The examples the decided checks and pockets cite, teacher and student side by side."""
    from harness.examples import ExampleSource, report_examples

    traffic_rows = None
    if traffic is not None:
        assert prep.traffic_data is not None
        assert teacher.traffic is not None and student.traffic is not None
        traffic_rows = ExampleSource("traffic", prep.traffic_data, traffic.inputs,
                                     teacher.traffic, student.traffic)
    return report_examples(
        decided.checks, decided.pockets,
        eval_rows=ExampleSource("eval", prep.data, inputs, teacher.predictions,
                                student.predictions),
        traffic_rows=traffic_rows, traffic_pockets=decided.traffic_pockets,
        limit=options.report_examples)


def run_suite(path: Path, options: Options | None = None) -> SuiteResult:
    """:func:`prepare_suite` then :func:`run_prepared`."""
    return run_prepared(prepare_suite(path, options), options)
