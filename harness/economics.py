"""The economics scorecard of a distillation: size, speed, cost, training payback, candidates.

Everything here is plain Python over plain numbers. The only measurement is
:func:`measure_latency`, which times two callables; every other function is arithmetic on
facts the caller already has (:class:`~harness.models.base.ModelFacts`, a suite's
``economics:`` section, a student's ``metadata.training``).

Timing is noisy by nature, so every value derived from a measured time lives under the
``"timing"`` key of the economics section (:data:`TIMING_KEY`) and every gateable metric
derived from one is named in :data:`TIMING_METRICS`: a comparison of two reports drops them,
and the rest of the report stays deterministic.
"""

from __future__ import annotations

import difflib
import gc
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.models.base import ModelFacts

#: Key of the economics section under which every timing-derived value is stored.
TIMING_KEY = "timing"

#: Gateable metrics derived from measured times (dropped from deterministic comparisons).
TIMING_METRICS: tuple[str, ...] = (
    "latency_improvement",
    "throughput_improvement",
    "teacher_cost_per_million",
    "student_cost_per_million",
    "cost_reduction",
    "payback_predictions",
)

#: Every gateable economics metric and whether a higher value is better.
METRICS: dict[str, bool] = {
    "size_reduction": True,
    "size_reduction_bytes": True,
    "latency_improvement": True,
    "throughput_improvement": True,
    "teacher_cost_per_million": False,
    "student_cost_per_million": False,
    "cost_reduction": True,
    "payback_predictions": False,
    "quality_retained_per_gpu_hour": True,
}

#: Bootstrap resamples behind every latency-ratio confidence interval.
BOOTSTRAP_RESAMPLES = 2000

_PERCENTILES = (50.0, 90.0, 99.0)


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Latency of teacher and student at one batch size.

    Latencies are seconds per batch (percentiles over the timed repeats); throughputs are
    examples per second at the median latency (``batch_size / p50``). ``ratio_p50`` is
    teacher p50 / student p50 (above 1: the student is faster) and ``ratio_ci`` its paired
    bootstrap confidence interval over repeats.
    """

    batch_size: int
    teacher_p50: float
    teacher_p90: float
    teacher_p99: float
    student_p50: float
    student_p90: float
    student_p99: float
    ratio_p50: float
    ratio_ci: tuple[float, float]
    teacher_throughput: float
    student_throughput: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers become None)."""
        return {
            "batch_size": self.batch_size,
            "teacher_p50": _json_float(self.teacher_p50),
            "teacher_p90": _json_float(self.teacher_p90),
            "teacher_p99": _json_float(self.teacher_p99),
            "student_p50": _json_float(self.student_p50),
            "student_p90": _json_float(self.student_p90),
            "student_p99": _json_float(self.student_p99),
            "ratio_p50": _json_float(self.ratio_p50),
            "ratio_ci": [_json_float(self.ratio_ci[0]), _json_float(self.ratio_ci[1])],
            "teacher_throughput": _json_float(self.teacher_throughput),
            "student_throughput": _json_float(self.student_throughput),
        }


@dataclass(frozen=True)
class LatencyReport:
    """What :func:`measure_latency` found.

    ``latency_improvement`` is the **geometric mean over batch sizes** of the per-batch
    teacher p50 / student p50 ratios, so that no single batch size (overhead-dominated at 1,
    memory-dominated at the largest) speaks for the whole serving range; ``latency_ci`` is
    its bootstrap confidence interval. ``throughput_improvement`` is the student's best
    throughput over the batch sizes divided by the teacher's best: what one machine serves
    when each model runs at its own best batch size. ``threads`` is the thread count that
    was requested (None: left as it was); ``sample_size`` the number of distinct example
    positions the batches were drawn from.
    """

    per_batch: list[LatencyStats]
    latency_improvement: float
    latency_ci: tuple[float, float]
    throughput_improvement: float
    threads: int | None
    warmup: int
    repeats: int
    sample_size: int

    @property
    def teacher_throughput(self) -> float:
        """The teacher's best throughput over the batch sizes (examples per second)."""
        return max(s.teacher_throughput for s in self.per_batch)

    @property
    def student_throughput(self) -> float:
        """The student's best throughput over the batch sizes (examples per second)."""
        return max(s.student_throughput for s in self.per_batch)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers become None)."""
        return {
            "per_batch": [s.to_dict() for s in self.per_batch],
            "latency_improvement": _json_float(self.latency_improvement),
            "latency_ci": [_json_float(self.latency_ci[0]), _json_float(self.latency_ci[1])],
            "throughput_improvement": _json_float(self.throughput_improvement),
            "teacher_throughput": _json_float(self.teacher_throughput),
            "student_throughput": _json_float(self.student_throughput),
            "threads": self.threads,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "sample_size": self.sample_size,
        }


def measure_latency(
    run_teacher: Callable[[Sequence[int]], object],
    run_student: Callable[[Sequence[int]], object],
    n_examples: int,
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    sample: int = 64,
    warmup: int = 2,
    repeats: int = 10,
    threads: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
    confidence: float = 0.95,
) -> LatencyReport:
    """Time teacher and student on the same batches, fairly, and compare them.

    ``run_teacher`` / ``run_student`` are called with a list of example positions (in
    ``range(n_examples)``) and run their model on those examples. The method:

    - ``min(sample, n_examples)`` positions are drawn without replacement with ``seed``;
      the batch of call ``j`` at batch size ``b`` is the window ``j*b .. j*b+b-1`` of that
      sample, wrapping around (so a batch larger than the sample repeats positions).
      Teacher and student always get the same batch within a repeat.
    - per batch size, ``warmup`` rounds (teacher then student) run first and are not timed;
    - then ``repeats`` timed rounds, alternating the models and flipping which goes first
      every repeat (teacher, student, student, teacher, …) so slow drift (thermal, other
      load) cancels;
    - if ``threads`` is given and torch is *already imported*, torch's intra-op thread
      count is fixed to it for the measurement and restored afterwards (torch is never
      imported here);
    - p50/p90/p99 per model and batch size (numpy's linear interpolation; with few repeats
      p99 is close to the maximum), and a paired bootstrap (``seed``, resampling repeats
      with teacher and student kept together) CI of the p50 ratio.

    Raises ValueError on a non-positive ``n_examples``, batch size, ``sample`` or
    ``repeats``, or a negative ``warmup``.
    """
    sizes = [int(b) for b in batch_sizes]
    if n_examples < 1:
        raise ValueError(f"n_examples must be at least 1, got {n_examples}")
    if not sizes or any(b < 1 for b in sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    if sample < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"need sample >= 1, repeats >= 1, warmup >= 0; got {sample}, {repeats}, {warmup}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")

    rng = np.random.default_rng(seed)
    m = min(int(sample), int(n_examples))
    positions = [int(p) for p in rng.choice(int(n_examples), size=m, replace=False)]

    def batch(j: int, b: int) -> list[int]:
        return [positions[(j * b + i) % m] for i in range(b)]

    def timed(run: Callable[[Sequence[int]], object], items: list[int]) -> float:
        start = clock()
        run(items)
        return clock() - start

    teacher_times: list[np.ndarray] = []
    student_times: list[np.ndarray] = []
    torch = sys.modules.get("torch") if threads is not None else None
    previous_threads = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None and threads is not None:
            torch.set_num_threads(int(threads))
        for b in sizes:
            for j in range(warmup):
                items = batch(j, b)
                run_teacher(items)
                run_student(items)
            gc.collect()  # so a collection owed to the warm-up does not land on one model
            t = np.empty(repeats)
            s = np.empty(repeats)
            for r in range(repeats):
                items = batch(warmup + r, b)
                if r % 2 == 0:
                    t[r] = timed(run_teacher, items)
                    s[r] = timed(run_student, items)
                else:
                    s[r] = timed(run_student, items)
                    t[r] = timed(run_teacher, items)
            teacher_times.append(t)
            student_times.append(s)
    finally:
        if torch is not None and previous_threads is not None:
            torch.set_num_threads(previous_threads)

    return _latency_report(
        sizes,
        teacher_times,
        student_times,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        sample_size=m,
        seed=seed,
        confidence=confidence,
    )


def _latency_report(
    sizes: list[int],
    teacher_times: list[np.ndarray],
    student_times: list[np.ndarray],
    *,
    threads: int | None,
    warmup: int,
    repeats: int,
    sample_size: int,
    seed: int,
    confidence: float,
) -> LatencyReport:
    """Percentiles, ratios and bootstrap CIs from the raw per-repeat times."""
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2.0 * 100.0
    qs = [tail, 100.0 - tail]
    per_batch: list[LatencyStats] = []
    log_boot = np.zeros(BOOTSTRAP_RESAMPLES)
    log_point = 0.0
    for b, t, s in zip(sizes, teacher_times, student_times, strict=True):
        tp = [float(v) for v in np.percentile(t, _PERCENTILES)]
        sp = [float(v) for v in np.percentile(s, _PERCENTILES)]
        ratio = _ratio(tp[0], sp[0])
        # Paired bootstrap: resample repeats, keeping each repeat's teacher and student.
        idx = rng.integers(0, len(t), size=(BOOTSTRAP_RESAMPLES, len(t)))
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = np.median(t[idx], axis=1) / np.median(s[idx], axis=1)
            log_boot = log_boot + np.log(boot)
        log_point += math.log(ratio) if ratio > 0 else math.nan
        ci = _interval(boot, qs)
        per_batch.append(
            LatencyStats(
                batch_size=b,
                teacher_p50=tp[0],
                teacher_p90=tp[1],
                teacher_p99=tp[2],
                student_p50=sp[0],
                student_p90=sp[1],
                student_p99=sp[2],
                ratio_p50=ratio,
                ratio_ci=ci,
                teacher_throughput=_ratio(b, tp[0]),
                student_throughput=_ratio(b, sp[0]),
            )
        )
    k = len(sizes)
    improvement = math.exp(log_point / k) if math.isfinite(log_point) else math.nan
    with np.errstate(over="ignore", invalid="ignore"):
        geo_boot = np.exp(log_boot / k)
    teacher_best = max(s.teacher_throughput for s in per_batch)
    student_best = max(s.student_throughput for s in per_batch)
    return LatencyReport(
        per_batch=per_batch,
        latency_improvement=improvement,
        latency_ci=_interval(geo_boot, qs),
        throughput_improvement=_ratio(student_best, teacher_best),
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        sample_size=sample_size,
    )


def _interval(values: np.ndarray, qs: list[float]) -> tuple[float, float]:
    """Percentile interval of bootstrap values; NaN bounds when any value is undefined."""
    if not np.all(np.isfinite(values)):
        return (math.nan, math.nan)
    lo, hi = np.percentile(values, qs)
    return (float(lo), float(hi))


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is not positive (a clock that could not resolve it)."""
    return float(num) / float(den) if den > 0 else math.nan


def _json_float(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


# --------------------------------------------------------------------------------------------
# Size, cost, training
# --------------------------------------------------------------------------------------------


def size_reduction(teacher: ModelFacts, student: ModelFacts) -> dict[str, float | None]:
    """``1 - student/teacher`` for parameters (``"params"``) and bytes on disk (``"bytes"``).

    A value is None when either model's fact is unknown or the teacher's is zero. A student
    bigger than its teacher gives a negative reduction.
    """

    def one(t: int | None, s: int | None) -> float | None:
        if t is None or s is None or t <= 0:
            return None
        return 1.0 - s / t

    return {
        "params": one(teacher.params, student.params),
        "bytes": one(teacher.bytes, student.bytes),
    }


def cost_per_million(usd_per_hour: float, throughput: float) -> float:
    """USD for one million predictions on a machine at ``usd_per_hour`` serving
    ``throughput`` examples per second.

    Raises ValueError on a negative price or a non-positive throughput.
    """
    if usd_per_hour < 0 or not math.isfinite(usd_per_hour):
        raise ValueError(f"usd_per_hour must be a finite number >= 0, got {usd_per_hour}")
    if not throughput > 0 or not math.isfinite(throughput):
        raise ValueError(f"throughput must be a finite number > 0, got {throughput}")
    return usd_per_hour / (throughput * 3600.0) * 1e6


def payback_point(
    training_usd: float, teacher_cost_per_million: float, student_cost_per_million: float
) -> float | None:
    """Predictions after which the student's training cost is repaid by its cheaper inference.

    ``training_usd / (saving per prediction)``; None when the student is not cheaper than
    the teacher (the training is never repaid). Raises ValueError on a negative cost.
    """
    if min(training_usd, teacher_cost_per_million, student_cost_per_million) < 0:
        raise ValueError("costs must be >= 0")
    saving = teacher_cost_per_million - student_cost_per_million
    if not saving > 0:
        return None
    return training_usd / saving * 1e6


def training_efficiency(quality_retained: float, gpu_hours: float | None) -> float | None:
    """Quality retained (e.g. student/teacher accuracy) per GPU-hour of distillation.

    None when the GPU-hours are unknown or not positive.
    """
    if gpu_hours is None or not gpu_hours > 0:
        return None
    return quality_retained / gpu_hours


# --------------------------------------------------------------------------------------------
# Candidates: Pareto frontier and recommendation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One candidate student as the frontier sees it.

    ``quality_ratio``: student/teacher quality (higher is better). ``latency``: student p50
    seconds, or any latency on a common scale (lower is better). ``size``: parameters or
    bytes, the same unit for every candidate (lower is better). ``passes``: whether it
    passes every fail-severity gate.
    """

    name: str
    quality_ratio: float
    latency: float
    size: float
    passes: bool
    cost_per_million: float | None = None


def _check_candidates(candidates: Sequence[Candidate]) -> None:
    names = [c.name for c in candidates]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"candidate names must be unique, repeated: {dupes}")
    for c in candidates:
        if not all(math.isfinite(v) for v in (c.quality_ratio, c.latency, c.size)):
            raise ValueError(f"candidate {c.name!r} has a non-finite quality, latency or size")


def _dominates(a: Candidate, b: Candidate) -> bool:
    """``a`` is at least as good as ``b`` everywhere and strictly better somewhere."""
    no_worse = a.quality_ratio >= b.quality_ratio and a.latency <= b.latency and a.size <= b.size
    better = a.quality_ratio > b.quality_ratio or a.latency < b.latency or a.size < b.size
    return no_worse and better


def pareto_frontier(candidates: Sequence[Candidate]) -> list[str]:
    """Names of the candidates no other candidate dominates.

    Objectives: maximise ``quality_ratio``, minimise ``latency`` and ``size``. Candidates
    with identical objectives do not dominate each other, so all of them stay on the
    frontier. Whether a candidate passes its gates plays no part. The order is
    deterministic whatever the input order: fastest first, then smaller, then higher
    quality, then by name. Raises ValueError on repeated names or non-finite values.
    """
    _check_candidates(candidates)
    front = [c for c in candidates if not any(_dominates(o, c) for o in candidates)]
    front.sort(key=lambda c: (c.latency, c.size, -c.quality_ratio, c.name))
    return [c.name for c in front]


def recommend(candidates: Sequence[Candidate]) -> str | None:
    """The cheapest candidate that passes every fail-severity gate; None if none passes.

    Cheapest: lowest ``cost_per_million`` when every passing candidate has one; otherwise
    (costs cannot be compared) lowest ``latency``. Ties go to the lower latency, then the
    smaller size, then the higher quality, then the name.
    """
    _check_candidates(candidates)
    passing = [c for c in candidates if c.passes]
    if not passing:
        return None
    by_cost = all(c.cost_per_million is not None for c in passing)

    def key(c: Candidate) -> tuple[float, float, float, float, str]:
        cost = float(c.cost_per_million) if by_cost and c.cost_per_million is not None else 0.0
        return (cost, c.latency, c.size, -c.quality_ratio, c.name)

    return min(passing, key=key).name


def frontier_plot(
    candidates: Sequence[Candidate],
    frontier: Sequence[str],
    recommended: str | None,
    path: Path,
) -> Path | None:
    """Draw quality ratio against latency for the candidates as a PNG at ``path``.

    Frontier candidates are joined by a line, failing ones drawn as crosses, the recommended
    one ringed; marker area grows with size. The file is written atomically (temporary file
    in the same folder, then renamed). Returns ``path``, or None when matplotlib (an
    optional extra) is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    path = Path(path)
    on_front = set(frontier)
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    biggest = max((c.size for c in candidates), default=1.0) or 1.0
    for c in candidates:
        area = 40.0 + 260.0 * max(c.size, 0.0) / biggest
        color = "tab:blue" if c.name in on_front else "tab:gray"
        marker = "o" if c.passes else "x"
        ax.scatter([c.latency], [c.quality_ratio], s=area, c=color, marker=marker, alpha=0.8)
        ax.annotate(
            c.name,
            (c.latency, c.quality_ratio),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
        if c.name == recommended:
            ax.scatter(
                [c.latency],
                [c.quality_ratio],
                s=area * 2.2,
                facecolors="none",
                edgecolors="tab:green",
                linewidths=2.0,
            )
    front = sorted((c for c in candidates if c.name in on_front), key=lambda c: c.latency)
    if len(front) > 1:
        ax.plot(
            [c.latency for c in front],
            [c.quality_ratio for c in front],
            color="tab:blue",
            linewidth=1.0,
            alpha=0.6,
        )
    ax.set_xlabel("student latency (p50)")
    ax.set_ylabel("quality ratio (student / teacher)")
    title = "Candidate students"
    if recommended is not None:
        title += f" — recommended: {recommended}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)

    import io

    from harness.fileio import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------------------------
# The suite's economics section and the scorecard
# --------------------------------------------------------------------------------------------

_ROLES = ("teacher", "student")
_ECONOMICS_KEYS = ("usd_per_hour", "batch_sizes", "sample", "warmup", "repeats", "threads")
_TRAINING_KEYS = ("gpu_hours", "usd", "examples")


@dataclass(frozen=True)
class EconomicsSettings:
    """A validated ``economics:`` section of a suite.

    Prices are USD per hour of the machine each model is served on (None: unknown, so no
    cost metrics); the rest are the settings of :func:`measure_latency`.
    """

    teacher_usd_per_hour: float | None = None
    student_usd_per_hour: float | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    sample: int = 64
    warmup: int = 2
    repeats: int = 10
    threads: int | None = None

    def latency_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`measure_latency` these settings fix."""
        return {
            "batch_sizes": self.batch_sizes,
            "sample": self.sample,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class TrainingFacts:
    """A student's validated ``metadata.training``: what its distillation cost."""

    gpu_hours: float | None = None
    usd: float | None = None
    examples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _unknown_key(
    key: str, known: Sequence[str], source: Path | str | None, where: str
) -> SpecError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(
        f"unknown key {key!r}{hint}; expected one of: {', '.join(known)}",
        file=source,
        field=f"{where}.{key}",
    )


def _non_negative(
    value: Any, source: Path | str | None, where: str, unit: str | None = None
) -> float:
    """``value`` as a float, or a SpecError when it is not a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        what = f"a number >= 0 ({unit})" if unit else "a number >= 0"
        raise SpecError(f"expected {what}, got {value!r}", file=source, field=where)
    return float(value)


def _price(value: Any, source: Path | str | None, where: str) -> float:
    return _non_negative(value, source, where, "USD per hour")


def _int(value: Any, minimum: int, source: Path | str | None, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(
            f"expected an integer >= {minimum}, got {value!r}", file=source, field=where
        )
    return int(value)


def parse_economics(
    raw: Mapping[str, Any] | None, source: Path | str | None = None
) -> EconomicsSettings:
    """Validate a suite's ``economics:`` section.

    ``usd_per_hour`` is one price for both models or a mapping ``{teacher: …, student: …}``
    (a missing role has no price); ``batch_sizes`` a non-empty list of distinct positive
    integers; ``sample`` and ``repeats`` positive integers, ``warmup`` an integer >= 0,
    ``threads`` a positive integer or null. Raises :class:`~harness.errors.SpecError`
    naming ``source`` and the field (e.g. ``economics.usd_per_hour.student``).
    """
    if raw is None:
        return EconomicsSettings()
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"expected a mapping, got {type(raw).__name__}", file=source, field="economics"
        )
    for key in raw:
        if key not in _ECONOMICS_KEYS:
            raise _unknown_key(str(key), _ECONOMICS_KEYS, source, "economics")
    defaults = EconomicsSettings()

    teacher_price: float | None = None
    student_price: float | None = None
    price = raw.get("usd_per_hour")
    if isinstance(price, Mapping):
        for role in price:
            if role not in _ROLES:
                raise _unknown_key(str(role), _ROLES, source, "economics.usd_per_hour")
        if "teacher" in price and price["teacher"] is not None:
            teacher_price = _price(price["teacher"], source, "economics.usd_per_hour.teacher")
        if "student" in price and price["student"] is not None:
            student_price = _price(price["student"], source, "economics.usd_per_hour.student")
    elif price is not None:
        teacher_price = student_price = _price(price, source, "economics.usd_per_hour")

    sizes = raw.get("batch_sizes", list(defaults.batch_sizes))
    if isinstance(sizes, bool) or isinstance(sizes, int):
        sizes = [sizes]
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or not sizes:
        raise SpecError(
            f"expected a non-empty list of positive integers, got {sizes!r}",
            file=source,
            field="economics.batch_sizes",
        )
    batch_sizes = tuple(
        _int(b, 1, source, f"economics.batch_sizes[{i}]") for i, b in enumerate(sizes)
    )
    if len(set(batch_sizes)) != len(batch_sizes):
        raise SpecError(
            f"batch sizes must be distinct, got {list(batch_sizes)}",
            file=source,
            field="economics.batch_sizes",
        )

    threads_raw = raw.get("threads")
    threads = None if threads_raw is None else _int(threads_raw, 1, source, "economics.threads")
    return EconomicsSettings(
        teacher_usd_per_hour=teacher_price,
        student_usd_per_hour=student_price,
        batch_sizes=batch_sizes,
        sample=_int(raw.get("sample", defaults.sample), 1, source, "economics.sample"),
        warmup=_int(raw.get("warmup", defaults.warmup), 0, source, "economics.warmup"),
        repeats=_int(raw.get("repeats", defaults.repeats), 1, source, "economics.repeats"),
        threads=threads,
    )


def parse_training(
    raw: Mapping[str, Any] | None,
    source: Path | str | None = None,
    where: str = "student.metadata.training",
) -> TrainingFacts:
    """Validate a model spec's ``metadata.training`` (``gpu_hours``, ``usd``, ``examples``).

    Numbers must be >= 0 (``examples`` an integer); an unknown key is a
    :class:`~harness.errors.SpecError` (a typo would silently switch a gate off).
    """
    if raw is None:
        return TrainingFacts()
    if not isinstance(raw, Mapping):
        raise SpecError(f"expected a mapping, got {type(raw).__name__}", file=source, field=where)
    for key in raw:
        if key not in _TRAINING_KEYS:
            raise _unknown_key(str(key), _TRAINING_KEYS, source, where)

    def number(key: str) -> float | None:
        value = raw.get(key)
        return None if value is None else _non_negative(value, source, f"{where}.{key}")

    examples = raw.get("examples")
    return TrainingFacts(
        gpu_hours=number("gpu_hours"),
        usd=number("usd"),
        examples=None if examples is None else _int(examples, 0, source, f"{where}.examples"),
    )


def scorecard(
    *,
    teacher: ModelFacts,
    student: ModelFacts,
    latency: LatencyReport | None,
    economics: Mapping[str, Any] | EconomicsSettings | None,
    training: Mapping[str, Any] | TrainingFacts | None,
    quality_retained: float | None,
    source: Path | str | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The report's ``economics`` section and the gateable economics metrics.

    ``economics`` is the suite's ``economics:`` section (validated with
    :func:`parse_economics`), ``training`` the student's ``metadata.training``,
    ``quality_retained`` the student's quality over the teacher's (e.g. accuracy ratio).

    The metrics dict holds every metric of :data:`METRICS` that can be computed from what
    was given, as finite floats; one that cannot (an unknown fact, no latency measured, a
    student that is not cheaper so never pays back) is absent. Every value derived from a
    measured time sits under ``section["timing"]`` and is named in :data:`TIMING_METRICS`.
    """
    settings = (
        economics
        if isinstance(economics, EconomicsSettings)
        else parse_economics(economics, source)
    )
    facts = training if isinstance(training, TrainingFacts) else parse_training(training, source)
    metrics: dict[str, float] = {}

    def put(name: str, value: float | None) -> float | None:
        if value is not None and math.isfinite(value):
            metrics[name] = float(value)
            return float(value)
        return None

    reduction = size_reduction(teacher, student)
    section: dict[str, Any] = {
        "teacher": {"params": teacher.params, "bytes": teacher.bytes},
        "student": {"params": student.params, "bytes": student.bytes},
        "size_reduction": put("size_reduction", reduction["params"]),
        "size_reduction_bytes": put("size_reduction_bytes", reduction["bytes"]),
        "usd_per_hour": {
            "teacher": settings.teacher_usd_per_hour,
            "student": settings.student_usd_per_hour,
        },
        "training": {
            "gpu_hours": facts.gpu_hours,
            "usd": facts.usd,
            "examples": facts.examples,
        },
        "quality_retained": (
            float(quality_retained)
            if quality_retained is not None and math.isfinite(quality_retained)
            else None
        ),
    }
    efficiency = (
        training_efficiency(quality_retained, facts.gpu_hours)
        if quality_retained is not None
        else None
    )
    section["quality_retained_per_gpu_hour"] = put("quality_retained_per_gpu_hour", efficiency)

    if latency is None:
        section[TIMING_KEY] = None
        return section, metrics

    timing: dict[str, Any] = {"latency": latency.to_dict()}
    timing["latency_improvement"] = put("latency_improvement", latency.latency_improvement)
    timing["latency_ci"] = [_json_float(v) for v in latency.latency_ci]
    timing["throughput_improvement"] = put("throughput_improvement", latency.throughput_improvement)
    teacher_cpm = _cost(settings.teacher_usd_per_hour, latency.teacher_throughput)
    student_cpm = _cost(settings.student_usd_per_hour, latency.student_throughput)
    timing["teacher_cost_per_million"] = put("teacher_cost_per_million", teacher_cpm)
    timing["student_cost_per_million"] = put("student_cost_per_million", student_cpm)
    reduction_cost = (
        1.0 - student_cpm / teacher_cpm
        if teacher_cpm is not None and student_cpm is not None and teacher_cpm > 0
        else None
    )
    timing["cost_reduction"] = put("cost_reduction", reduction_cost)
    payback = (
        payback_point(facts.usd, teacher_cpm, student_cpm)
        if facts.usd is not None and teacher_cpm is not None and student_cpm is not None
        else None
    )
    timing["payback_predictions"] = put("payback_predictions", payback)
    section[TIMING_KEY] = timing
    return section, metrics


def _cost(usd_per_hour: float | None, throughput: float) -> float | None:
    if usd_per_hour is None or not math.isfinite(throughput) or throughput <= 0:
        return None
    return cost_per_million(usd_per_hour, throughput)
