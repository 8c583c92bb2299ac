"""One suite run, end to end: spec -> data -> models -> metrics -> gate -> :class:`SuiteResult`.

Two phases, so the pytest glue can name its items before any model runs:
:func:`prepare_suite` loads and checks the suite, its rubric, its data and its slices and
plans the checks (no model is loaded); :func:`run_prepared` runs the models (through the
prediction cache) and decides every check.

:func:`run_prepared` is a sequence of steps, each returning its own dataclass: outputs
(:func:`run_models`) → baseline (:func:`baseline_step`) → economics (:func:`economics_step`)
→ coverage (:func:`coverage_step`) → audit (:func:`audit_step`) → traffic
(:func:`traffic_step`) → checks and pockets (:func:`harness.gate.judge`, shared by the gated
student and every candidate) → the frontier of candidates (:func:`candidates_step`). What
differs between classification and generation is asked of the suite's task
(:mod:`harness.tasks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import gate
from harness.data import Dataset, build_slices
from harness.errors import BaselineError, SpecError
from harness.metrics import get_metric
from harness.models import Model, Predictions, load_model
from harness.options import Options
from harness.outputs import EvalContext, Outputs
from harness.results import CoverageGap, ModelInfo, SuiteResult
from harness.paths import display_path
from harness.spec import load_suite
from harness.spec_types import EconomicsSettings, SuiteSpec
from harness.tasks import Task, get_task


@dataclass
class PreparedSuite:
    """A suite loaded, checked and planned; nothing has run."""

    spec: SuiteSpec
    data: Dataset
    slices: dict[str, np.ndarray]
    plan: list[gate.PlannedCheck]
    distill_data: Dataset | None = None
    traffic_data: Dataset | None = None
    traffic_slices: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)  # student fingerprint -> timing

    @property
    def task(self) -> Task:
        return get_task(self.spec.task)

    @property
    def economics(self) -> EconomicsSettings:
        """The suite's ``economics:`` settings (typed when the suite loaded; defaults if none)."""
        return self.spec.economics or EconomicsSettings()

    @property
    def model_data(self) -> Dataset:
        """What the models run on: the eval data, then the traffic sample when there is one."""
        if self.traffic_data is None:
            return self.data
        if self._model_data is None:
            self._model_data = self.data.concat(self.traffic_data)
        return self._model_data

    _model_data: Dataset | None = field(default=None, repr=False)


def prepare_suite(path: Path, options: Options | None = None) -> PreparedSuite:
    """Load the suite at ``path`` and everything it names; plan its checks. No model runs."""
    spec = load_suite(Path(path))
    task = get_task(spec.task)
    data = task.load_data(spec.data, spec)
    slices = build_slices(spec, data)
    distill = task.load_data(spec.distillation_data, spec) if spec.distillation_data else None
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
                            slice_owners=_slice_owners(spec, slices))
    prep = PreparedSuite(spec=spec, data=data, slices=slices, plan=plan, distill_data=distill,
                         traffic_data=traffic, traffic_slices=traffic_slices)
    models = load_models(prep, options or Options())
    try:
        for model in (models.teacher, *models.students.values()):
            model.validate(prep.model_data, spec.labels)
    finally:
        models.close()
    return prep


def _slice_owners(spec: SuiteSpec, slices: Mapping[str, np.ndarray]
                  ) -> dict[str, tuple[str | None, str | None]]:
    """Slice name -> (owner, playbook) of the declared slice (a ``by:`` entry: every value)."""
    owners: dict[str, tuple[str | None, str | None]] = {}
    for entry in spec.slices:
        if not (entry.owner or entry.playbook):
            continue
        if entry.name is not None:
            owners[entry.name] = (entry.owner, entry.playbook)
        else:
            for name in slices:
                if all(f"{f}=" in name for f in entry.by):
                    owners[name] = (entry.owner, entry.playbook)
    return owners


# --------------------------------------------------------------------------- models

@dataclass
class ModelRun:
    """One model's outputs on the eval data (and on the traffic sample, when there is one)."""

    model: Model
    predictions: Predictions
    outputs: Outputs
    cached: bool
    traffic: Predictions | None = None
    traffic_outputs: Outputs | None = None


@dataclass
class Models:
    """Every model of a run: the teacher, the gated student and the candidate students."""

    teacher: Model
    students: dict[str, Model]
    gated: str

    @property
    def student(self) -> Model:
        return self.students[self.gated]

    def close(self) -> None:
        self.teacher.close()
        for m in self.students.values():
            m.close()


def load_models(prep: PreparedSuite, options: Options) -> Models:
    """Build every adapter (cheap: weights load on first use)."""
    spec = prep.spec
    teacher = load_model(spec.teacher, "teacher", options)
    students = {name: load_model(ms, name, options) for name, ms in spec.students.items()}
    return Models(teacher=teacher, students=students, gated=next(iter(spec.students)))


def run_model(prep: PreparedSuite, model: Model, options: Options, cache: Any) -> ModelRun:
    """``model``'s outputs over the eval data and the traffic sample, through the cache.

    With ``traffic_data`` the model runs once over both (eval rows first), so a predictions
    file holding the ids of both, and one cache entry, serve the two.
    """
    task, spec = prep.task, prep.spec
    data = prep.model_data
    pred, cached = _predict(model, data, spec.labels, options, cache)
    if prep.traffic_data is None:
        return ModelRun(model=model, predictions=pred, outputs=task.encode(pred, spec),
                        cached=cached)
    n = len(prep.data)
    evals, traffic = pred.subset(np.arange(n)), pred.subset(np.arange(n, len(data)))
    return ModelRun(model=model, predictions=evals, outputs=task.encode(evals, spec),
                    cached=cached, traffic=traffic, traffic_outputs=task.encode(traffic, spec))


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


# --------------------------------------------------------------------------- the run

def run_prepared(prep: PreparedSuite, options: Options | None = None) -> SuiteResult:
    """Run teacher and student(s) and decide every planned check."""
    from harness.cache import PredictionCache

    options = options or Options()
    spec, data, task = prep.spec, prep.data, prep.task
    cache = PredictionCache(options.cache_dir)
    models = load_models(prep, options)
    try:
        teacher = run_model(prep, models.teacher, options, cache)
        student = run_model(prep, models.student, options, cache)
        ctx = task.context(data, teacher.outputs, spec)
        result = _new_result(prep, teacher, student)
        for entry in getattr(cache, "recomputed", []):
            result.notes.append(f"corrupt cache entry {display_path(entry)} was recomputed")

        baseline = baseline_step(prep, result, options)
        quality = quality_ratio(prep, ctx, student.outputs)
        timings = timing_step(prep, models, options)
        econ = economics_step(prep, models.teacher, models.student, timings.get(models.gated),
                              quality, runs=(teacher, student))
        result.economics = econ.section
        cover = coverage_step(prep, models.teacher, ctx, student.outputs, options)
        result.coverage, result.coverage_gaps = cover.summary, cover.gaps
        result.teacher_audit = audit_step(prep, ctx, teacher, student)
        traffic = traffic_step(prep, teacher, student, options)
        if traffic is not None:
            result.traffic = traffic.block
            result.coverage_gaps.extend(traffic.gaps)

        inputs = gate.GateInputs(
            ctx=ctx, student=student.outputs, slices=prep.slices, ids=data.ids,
            baseline=baseline.outputs, baseline_error=baseline.error,
            baseline_errors=baseline.errors_by_pin, baselines=baseline.by_pin,
            suite_metrics={**econ.figures, **cover.figures},
            suite_metric_errors={**econ.errors, **cover.errors},
            features=_discovery_features(prep), discovery=spec.discovery, seed=options.seed,
            strict=options.strict)
        criteria = {c.name: c for c in spec.rubric.criteria}
        verdict = gate.judge(prep.plan, inputs, criteria, strict=options.strict,
                             traffic=traffic.inputs if traffic is not None else None)
        result.checks, result.pockets = verdict.checks, verdict.pockets
        if traffic is not None and result.traffic is not None:
            result.traffic["pockets"] = [p.to_dict() for p in verdict.traffic_pockets]
        result.slices = slice_table(prep, inputs, result.checks)
        from harness import coverage

        support = coverage.support_gaps(
            result.checks, min_support={c.name: c.min_support for c in spec.rubric.criteria})
        result.coverage_gaps = support + result.coverage_gaps

        if len(models.students) > 1:
            candidates_step(prep, models, ctx, options, cache, result, timings, teacher)

        if options.update_baselines:
            from harness import baseline as baseline_mod

            state = baseline_mod.write_baseline(spec, result, data, student.predictions)
            result.baseline.update({"written": state})
            if baseline.needed:
                # Compare with what was just written: the baseline checks now pass by construction.
                baseline = baseline_step(prep, result, options, after_update=True)
                inputs.baseline, inputs.baseline_error = baseline.outputs, baseline.error
                inputs.baselines, inputs.baseline_errors = baseline.by_pin, baseline.errors_by_pin
                verdict = gate.judge(prep.plan, inputs, criteria, strict=options.strict,
                                     traffic=traffic.inputs if traffic is not None else None)
                result.checks = verdict.checks
        result.examples = examples_step(prep, inputs, teacher, student, traffic,
                                        verdict.traffic_pockets, result, options)
        return result
    finally:
        models.close()


def examples_step(prep: PreparedSuite, inputs: gate.GateInputs, teacher: ModelRun,
                  student: ModelRun, traffic: TrafficOutcome | None, traffic_pockets: Any,
                  result: SuiteResult, options: Options) -> dict[str, Any]:
    """# examples: what the failing checks and the pockets cite, side by side (the HTML page)."""
    from harness.examples import ExampleSource, report_examples

    rows = ExampleSource("eval", prep.data, inputs, teacher.predictions, student.predictions)
    traffic_rows = None
    if traffic is not None and prep.traffic_data is not None:
        assert teacher.traffic is not None and student.traffic is not None
        traffic_rows = ExampleSource("traffic", prep.traffic_data, traffic.inputs,
                                     teacher.traffic, student.traffic)
    return report_examples(result.checks, result.pockets, eval_rows=rows, traffic_rows=traffic_rows,
                           traffic_pockets=traffic_pockets, limit=options.report_examples)


def run_suite(path: Path, options: Options | None = None) -> SuiteResult:
    """:func:`prepare_suite` then :func:`run_prepared`."""
    return run_prepared(prepare_suite(path, options), options)


def _repo_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _new_result(prep: PreparedSuite, teacher: ModelRun, student: ModelRun) -> SuiteResult:
    spec, data = prep.spec, prep.data
    return SuiteResult(
        name=spec.name, version=spec.version, task=spec.task,
        path=_repo_path(spec.path, spec.root), n=len(data), data_sha256=data.sha256,
        rubric={"id": spec.rubric.id, "version": spec.rubric.version,
                "path": _repo_path(spec.rubric.path, spec.root),
                "lines": {c.name: c.line for c in spec.rubric.criteria if c.line}},
        teacher=model_info(prep, teacher, "teacher"),
        student=model_info(prep, student, "student"),
        notes=list(prep.notes),
    )


def model_info(prep: PreparedSuite, run: ModelRun, role: str) -> ModelInfo:
    """The report's facts of one model: fingerprint, size, usage, what served it, health."""
    facts = run.model.facts()
    usage = run.predictions.usage()
    if usage is not None:
        usage["cached"] = int(run.cached)
    return ModelInfo(role=role, fingerprint=run.model.fingerprint(), params=facts.params,
                     bytes=facts.bytes, type=run.model.spec.type, cached=run.cached,
                     usage=usage, served=run.predictions.served,
                     health=prep.task.health(run.outputs))


# --------------------------------------------------------------------------- baseline

@dataclass
class BaselineState:
    """The stored student(s) the ``baseline_*`` criteria compare with.

    ``outputs`` / ``error``: the current baseline; ``by_pin`` / ``errors_by_pin``: pinned
    baselines named by ``against:``.
    """

    needed: bool
    outputs: Outputs | None = None
    error: str | None = None
    by_pin: dict[str, Outputs] = field(default_factory=dict)
    errors_by_pin: dict[str, str] = field(default_factory=dict)


def baseline_step(prep: PreparedSuite, result: SuiteResult, options: Options, *,
                  after_update: bool = False) -> BaselineState:
    """Load the baselines the rubric compares with (none on ``--update-baselines``' first pass)."""
    from harness import baseline as baseline_mod

    spec, data = prep.spec, prep.data
    wanted = [c for c in spec.rubric.criteria if c.compare.startswith("baseline")]
    state = BaselineState(needed=bool(wanted))
    result.baseline.setdefault("path", _repo_path(spec.baseline_path, spec.root))
    if not after_update and spec.baseline_path.is_file():
        from harness.history import trend_summary

        # The accepted releases (git history of the baseline) for the Markdown "Trend"
        # section; None without git history, which is no error for a run.
        trend = trend_summary(spec.baseline_path)
        if trend is not None:
            result.baseline["trend"] = trend
    if not wanted or (options.update_baselines and not after_update):
        return state
    pins = sorted({c.against for c in wanted if c.against != "current"})
    if any(c.against == "current" for c in wanted):
        try:
            stored = baseline_mod.load_baseline(spec, data)
        except BaselineError as exc:
            state.error = str(exc)
        else:
            summary = stored.summary(result.teacher.fingerprint)
            result.baseline.update(summary)
            if summary["teacher_changed"] and not after_update:
                result.notes.append(f"{summary['path']}: the teacher changed since this baseline "
                                    "was written (teacher comparisons use the current teacher)")
            state.outputs = stored.outputs(data, spec.labels)
    for name in pins:
        try:
            pinned = baseline_mod.load_pinned(spec, data, name)
        except baseline_mod.MissingBaseline as exc:
            # A rubric naming a pin nobody wrote is bad input (distill run: exit 2, this line).
            state.errors_by_pin[name] = str(exc)
            first = next(c for c in wanted if c.against == name)
            result.baseline.setdefault("missing_pins", {})[name] = (
                f"{_repo_path(spec.rubric.path, spec.root)}: criteria[{first.index}].against: {exc}")
        except BaselineError as exc:
            state.errors_by_pin[name] = str(exc)
        else:
            state.by_pin[name] = pinned.outputs(data, spec.labels)
            result.baseline.setdefault("pins", {})[name] = {
                "path": pinned.shown, "student_fingerprint": pinned.about["student"]["fingerprint"]}
    return state


# --------------------------------------------------------------------------- quality

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


def slice_table(prep: PreparedSuite, inputs: gate.GateInputs,
                checks: list[Any]) -> list[dict[str, Any]]:
    """Per-slice rows of the terminal table: n, teacher, student, delta, CI, worst verdict."""
    from harness import stats

    metric = get_metric(prep.task.primary(inputs.ctx.has_gold))
    s_all = inputs.per_example(metric, inputs.student)
    t_all = inputs.per_example(metric, inputs.ctx.teacher)
    rank = {"error": 5, "fail": 4, "inconclusive": 3, "warn": 2, "pass": 1}
    rows = []
    for name, idx in prep.slices.items():
        s, t = s_all[idx], t_all[idx]
        test = stats.compare_test(student=s, reference=t, compare="teacher_delta",
                                  bound="min" if metric.higher_is_better else "max",
                                  threshold=0.0, binary=metric.binary, confidence=0.95, seed=0)
        verdicts = [c.verdict for c in checks if c.slice == name]
        worst = max(verdicts, key=lambda v: rank[v]) if verdicts else ""
        rows.append({"slice": name, "n": int(len(idx)), "metric": metric.name,
                     "higher_is_better": metric.higher_is_better,
                     "teacher": float(t.mean()), "student": float(s.mean()),
                     "delta": float(s.mean() - t.mean()),
                     "ci": [float(test.ci[0]), float(test.ci[1])], "verdict": worst})
    return rows


def _discovery_features(prep: PreparedSuite, data: Dataset | None = None) -> dict[str, np.ndarray]:
    spec = prep.spec
    data = data if data is not None else prep.data
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


# --------------------------------------------------------------------------- economics

def timing_step(prep: PreparedSuite, models: Models, options: Options) -> dict[str, Any]:
    """Latency of every student that needs one, the teacher timed once for all of them.

    Student name -> :class:`~harness.economics.LatencyReport`. Nothing is timed when neither the
    rubric nor the suite's ``economics:`` asks for it, or when a model cannot be timed (a
    predictions file; an endpoint reports its request latency instead).
    """
    from harness import economics

    spec = prep.spec
    wanted = {c.metric for c in spec.rubric.criteria}
    if not (spec.economics or wanted & set(economics.TIMING_METRICS)):
        return {}
    if not models.teacher.timeable:
        return {}
    todo = {name: m for name, m in models.students.items() if m.timeable}
    # A candidate listed under its own name and as the gated student is timed once.
    by_fp: dict[str, str] = {}
    for name, m in todo.items():
        by_fp.setdefault(m.fingerprint(), name)
    fresh = {name: todo[name] for fp, name in by_fp.items() if fp not in prep.latency}
    settings = prep.economics
    fresh = _reuse_timings(prep, models.teacher, fresh, settings.latency_kwargs(), options)
    if fresh:
        data, labels = prep.data, prep.spec.labels

        def runner(model: Model) -> Any:
            def run(positions: Any) -> Any:
                return model.predict(data.subset(positions), list(labels))
            return run

        reports = economics.measure_latencies(
            runner(models.teacher), {name: runner(m) for name, m in fresh.items()}, len(data),
            seed=options.seed, **settings.latency_kwargs())
        from harness.cache import LatencyStore

        store = LatencyStore(options.cache_dir)
        for name, report in reports.items():
            prep.latency[fresh[name].fingerprint()] = report
            key = store.key(models.teacher.fingerprint(), fresh[name].fingerprint(),
                            settings.latency_kwargs())
            store.store(key, report.to_dict())
    return {name: prep.latency[m.fingerprint()] for name, m in todo.items()
            if m.fingerprint() in prep.latency}


def _reuse_timings(prep: PreparedSuite, teacher: Model, fresh: dict[str, Model],
                   settings: dict[str, Any], options: Options) -> dict[str, Model]:
    """Read back the timings of unchanged (teacher, student, settings, host); return the rest.

    A pull request that changes only the student times the teacher against that student
    alone; the candidates it left unchanged keep their stored measurement (marked ``reused``).
    """
    from harness import economics
    from harness.cache import LatencyStore

    store = LatencyStore(options.cache_dir)
    left: dict[str, Model] = {}
    for name, model in fresh.items():
        doc = store.load(store.key(teacher.fingerprint(), model.fingerprint(), settings))
        try:
            report = economics.LatencyReport.from_dict(doc) if doc is not None else None
        except (KeyError, TypeError, ValueError):
            report = None
        if report is None:
            left[name] = model
        else:
            prep.latency[model.fingerprint()] = report
    return left


@dataclass
class EconomicsOutcome:
    """The economics section of the report, and the run-level figures the rubric can gate."""

    section: dict[str, Any]
    figures: dict[str, float]
    errors: dict[str, str]


def economics_step(prep: PreparedSuite, teacher: Model, student: Model, latency: Any,
                   quality: float | None, runs: tuple[ModelRun, ModelRun] | None = None,
                   ) -> EconomicsOutcome:
    """Size, speed, cost and training figures of one student against the teacher.

    ``runs`` (teacher's, student's) carry measured token usage and request latencies: a model
    priced by the token (``metadata.usd_per_million_tokens``) costs its mean tokens per
    request, and two endpoints compare by their request latency.
    """
    from harness import economics

    spec = prep.spec
    wanted = {c.metric for c in spec.rubric.criteria}
    settings = prep.economics
    errors: dict[str, str] = {}
    tokens = _token_economics(prep, runs) if runs is not None else None
    if latency is None and tokens is None and (
            spec.economics or wanted & set(economics.TIMING_METRICS)):
        untimed = [m for m in (teacher, student) if not m.timeable]
        why = (f"the {untimed[0].role} ({untimed[0].spec.type}) cannot be timed" if untimed
               else "not measured in this run")
        for name in economics.TIMING_METRICS:
            errors[name] = why
    section, figures = economics.scorecard(
        teacher=teacher.facts(), student=student.facts(), latency=latency, economics=settings,
        training=student.spec.training, quality_retained=quality,
        source=display_path(spec.path))
    for name in economics.METRICS:
        if name not in figures and name not in errors:
            errors[name] = "not computable from this run (see the economics section)"
    if tokens is not None:
        section["tokens"], token_figures = tokens
        if section.get("timing") is None and token_figures:
            section["timing"] = {}
        if section.get("timing") is not None:
            section["timing"].update(token_figures)
        figures.update(token_figures)
        for name in token_figures:
            errors.pop(name, None)
        costs = (figures.get("teacher_cost_per_million"), figures.get("student_cost_per_million"))
        if "teacher_cost_per_million" in token_figures or "student_cost_per_million" in token_figures:
            # A cost by the token replaced one by the hour: what derives from the two costs is
            # derived again from the ones that now stand (either may be priced either way).
            _derive_savings(figures, section["timing"], errors, costs, student.spec.training.usd)
    section["metrics"] = {k: v for k, v in figures.items() if k not in economics.TIMING_METRICS}
    if isinstance(section.get("timing"), dict):
        section["timing"]["metrics"] = {k: v for k, v in figures.items()
                                        if k in economics.TIMING_METRICS}
    return EconomicsOutcome(section=section, figures=dict(figures), errors=errors)


def _derive_savings(figures: dict[str, float], timing: dict[str, Any], errors: dict[str, str],
                    costs: tuple[float | None, float | None], training_usd: float | None) -> None:
    """``cost_reduction`` and ``payback_predictions`` from the teacher's and student's costs."""
    from harness.economics import payback_point

    teacher, student = costs
    for name in ("cost_reduction", "payback_predictions"):
        figures.pop(name, None)
        timing.pop(name, None)
    if teacher is None or student is None:
        for name in ("cost_reduction", "payback_predictions"):
            errors.setdefault(name, "needs the cost per million of both models (by the hour "
                              "with a timing, or by the token with usage)")
        return
    if teacher > 0:
        figures["cost_reduction"] = timing["cost_reduction"] = 1.0 - student / teacher
        errors.pop("cost_reduction", None)
    payback = payback_point(training_usd, teacher, student) if training_usd is not None else None
    if payback is not None:
        figures["payback_predictions"] = timing["payback_predictions"] = payback
        errors.pop("payback_predictions", None)


def _token_economics(prep: PreparedSuite, runs: tuple[ModelRun, ModelRun]
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
    for role, run in zip(("teacher", "student"), runs, strict=True):
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
    figures: dict[str, float] = {}
    for role, cost in costs.items():
        figures[f"{role}_cost_per_million"] = cost
    if len(latency) == 2 and latency["student"]["p50_s"] > 0:
        figures["latency_improvement"] = latency["teacher"]["p50_s"] / latency["student"]["p50_s"]
        block["latency_improvement_kind"] = "request latency (teacher p50 / student p50)"
    return block, figures


# --------------------------------------------------------------------------- coverage

@dataclass
class CoverageOutcome:
    """Distillation coverage: its summary, its gaps and ``uncovered_fraction``."""

    summary: dict[str, Any] = field(default_factory=dict)
    gaps: list[CoverageGap] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def coverage_step(prep: PreparedSuite, teacher: Model, ctx: EvalContext, s_out: Outputs,
                  options: Options) -> CoverageOutcome:
    """Where the distillation data does not cover the eval data (by feature and by embedding)."""
    from harness import coverage

    if prep.distill_data is None:
        return CoverageOutcome(errors={"uncovered_fraction": "the suite declares no "
                                       "distillation_data"})
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
    t_right = prep.task.correct(ctx, ctx.teacher)
    if t_right is not None:
        s_right = prep.task.correct(ctx, s_out)
        assert s_right is not None
        gap = s_right - t_right
    eval_vectors = distill_vectors = None
    if spec.coverage.embeddings == "teacher":
        eval_vectors = teacher.embed(data.texts())
        distill_vectors = teacher.embed(distill.texts()) if eval_vectors is not None else None
    summary, emb_gaps = coverage.embedding_coverage(
        data.texts(), distill.texts(), gap=gap, ids=list(data.ids), eval_vectors=eval_vectors,
        distill_vectors=distill_vectors, quantile=spec.coverage.quantile,
        seed=options.seed)
    return CoverageOutcome(summary=summary.to_dict(), gaps=[*gaps, *emb_gaps],
                           figures={"uncovered_fraction": float(summary.uncovered_fraction)})


# --------------------------------------------------------------------------- audit

def audit_step(prep: PreparedSuite, ctx: EvalContext, teacher: ModelRun,
               student: ModelRun) -> dict[str, Any]:
    """The teacher audit (empty without gold labels or references)."""
    if not ctx.has_gold:
        return {}
    return prep.task.audit(data=prep.data, ctx=ctx, teacher=teacher.predictions,
                           student=student.predictions,
                           slices={k: v for k, v in prep.slices.items() if k != "overall"},
                           suite=prep.spec)


# --------------------------------------------------------------------------- traffic

@dataclass
class TrafficOutcome:
    """Drift between eval data and traffic, and the label-free gate inputs on the traffic rows."""

    block: dict[str, Any]
    gaps: list[CoverageGap]
    inputs: gate.GateInputs


def traffic_step(prep: PreparedSuite, teacher: ModelRun, student: ModelRun,
                 options: Options) -> TrafficOutcome | None:
    """# traffic: drift per feature and the inputs of ``scope: traffic`` checks."""
    if prep.traffic_data is None:
        return None
    assert teacher.traffic_outputs is not None and student.traffic_outputs is not None
    traffic, task, spec = prep.traffic_data, prep.task, prep.spec
    ctx = EvalContext(labels=spec.labels, gold=None, teacher=teacher.traffic_outputs)
    slices = {gate.TRAFFIC: np.arange(len(traffic)),
              **{gate.traffic_slice(k): v for k, v in prep.traffic_slices.items()
                 if k != "overall"}}
    inputs = gate.GateInputs(
        ctx=ctx, student=student.traffic_outputs, slices=slices, ids=traffic.ids,
        features=_discovery_features(prep, traffic), discovery=spec.discovery,
        seed=options.seed, strict=options.strict, whole=gate.TRAFFIC)
    fidelity = get_metric(task.label_free_metric)
    agreement = np.asarray(fidelity.per_example(ctx, student.traffic_outputs), dtype=float)
    analysis = _traffic_drift(prep, options, agreement)
    # DESIGN's block (n, agreement, drift: the gaps found, pockets: filled in by the judge),
    # with every feature's test, the uncovered share and notes beside it.
    block: dict[str, Any] = {"metric": fidelity.name, **analysis.to_dict()}
    block["n"] = len(traffic)
    block["agreement"] = float(agreement.mean()) if len(agreement) else None
    return TrafficOutcome(block=block, gaps=analysis.gaps, inputs=inputs)


def _traffic_drift(prep: PreparedSuite, options: Options, agreement: np.ndarray) -> Any:
    """Per-feature drift, unseen values and uncovered traffic rows (:func:`harness.traffic.analyse`)."""
    from harness import traffic as traffic_mod

    data, traffic = prep.data, prep.traffic_data
    assert traffic is not None
    features = [f for f in prep.spec.data.features if f in data.features]
    missing = [f for f in features if f not in traffic.features]
    shared = [f for f in features if f in traffic.features]
    analysis = traffic_mod.analyse(
        {f: data.features[f] for f in shared}, {f: traffic.features[f] for f in shared},
        agreement=agreement, eval_texts=data.texts(), traffic_texts=traffic.texts(),
        traffic_ids=list(traffic.ids), n_traffic=len(traffic), seed=options.seed)
    if missing:
        analysis.notes.insert(0, f"traffic_data lacks feature(s) {', '.join(missing)}: no drift "
                                 "test for them")
    return analysis


# --------------------------------------------------------------------------- candidates

def candidates_step(prep: PreparedSuite, models: Models, ctx: EvalContext, options: Options,
                    cache: Any, result: SuiteResult, timings: Mapping[str, Any],
                    teacher_run: ModelRun) -> None:
    """Score every candidate student; Pareto frontier and the recommended operating point."""
    from harness import economics

    spec, data = prep.spec, prep.data
    candidates = []
    rows = []
    no_baseline = [p for p in prep.plan if not p.criterion.compare.startswith("baseline")
                   and p.criterion.scope != gate.TRAFFIC]
    criteria = {c.name: c for c in spec.rubric.criteria}
    features = _discovery_features(prep)
    gated = models.gated
    named = {m.fingerprint() for n, m in models.students.items() if n != gated}
    for name, model in models.students.items():
        if name == gated and name == "student" and model.fingerprint() in named:
            continue  # the gated student is also listed as a candidate under its own name
        run = run_model(prep, model, options, cache)
        quality = quality_ratio(prep, ctx, run.outputs)
        latency = timings.get(name)
        econ = economics_step(prep, models.teacher, model, latency, quality,
                              runs=(teacher_run, run))
        inputs = gate.GateInputs(ctx=ctx, student=run.outputs, slices=prep.slices, ids=data.ids,
                                 suite_metrics=econ.figures, suite_metric_errors=econ.errors,
                                 features=features, discovery=spec.discovery, seed=options.seed)
        checks = gate.judge(no_baseline, inputs, criteria, strict=options.strict).checks
        passes = all(c.verdict not in ("fail", "error") for c in checks)
        facts = model.facts()
        p50 = None
        if latency is not None and latency.per_batch:
            p50 = latency.per_batch[-1].student_p50
        cost = econ.figures.get("student_cost_per_million")
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
                     "metrics": dict(econ.figures), "timing": econ.section.get("timing")})
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
