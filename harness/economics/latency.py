"""Latency of teacher and students, measured fairly and only as long as the CI needs.

:func:`measure_latencies` times one teacher and any number of students on the same batches,
alternating them within every round (teacher, s1, s2, …, then the reverse order) so slow
drift of the machine cancels, and times the teacher once per round however many students
there are. Per batch size it stops as soon as, for every student, the teacher/student p50
ratio's confidence interval has a half-width of at most ``target_half_width`` × the ratio
(after ``repeats`` rounds, at most ``max_repeats``). :func:`measure_latency` is the same for
one student.

The clock is a parameter, so a test drives the whole method with a fake clock whose every
duration it chose.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.spec_types import (
    DEFAULT_MAX_REPEATS,
    DEFAULT_MIN_REPEATS,
    DEFAULT_TARGET_HALF_WIDTH,
)

#: Bootstrap resamples behind every latency-ratio confidence interval.
BOOTSTRAP_RESAMPLES = 2000

#: Fewest repeats whose bootstrap interval is allowed to stop the measurement (with one or
#: two repeats the resampled medians barely vary, so the interval would look narrow).
FEWEST_FOR_A_CI = 3

_PERCENTILES = (50.0, 90.0, 99.0)

Run = Callable[[Sequence[int]], object]


@dataclass(frozen=True)
class LatencyStats:
    """Latency of teacher and student at one batch size.

    Latencies are seconds per batch (percentiles over the timed repeats); throughputs are
    examples per second at the median latency (``batch_size / p50``). ``ratio_p50`` is
    teacher p50 / student p50 (above 1: the student is faster) and ``ratio_ci`` its paired
    bootstrap confidence interval over the ``repeats`` timed repeats.
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
    repeats: int = 0

    @property
    def ci_half_width(self) -> float:
        """Half the CI's width as a fraction of the ratio (NaN when undefined)."""
        return relative_half_width(self.ratio_p50, self.ratio_ci)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers become None)."""
        return {
            "batch_size": self.batch_size,
            "repeats": self.repeats,
            "teacher_p50": json_float(self.teacher_p50),
            "teacher_p90": json_float(self.teacher_p90),
            "teacher_p99": json_float(self.teacher_p99),
            "student_p50": json_float(self.student_p50),
            "student_p90": json_float(self.student_p90),
            "student_p99": json_float(self.student_p99),
            "ratio_p50": json_float(self.ratio_p50),
            "ratio_ci": [json_float(self.ratio_ci[0]), json_float(self.ratio_ci[1])],
            "ci_half_width": json_float(self.ci_half_width),
            "teacher_throughput": json_float(self.teacher_throughput),
            "student_throughput": json_float(self.student_throughput),
        }


@dataclass(frozen=True)
class LatencyReport:
    """What :func:`measure_latency` found for one student.

    ``latency_improvement`` is the **geometric mean over batch sizes** of the per-batch
    teacher p50 / student p50 ratios, so that no single batch size (overhead-dominated at 1,
    memory-dominated at the largest) speaks for the whole serving range; ``latency_ci`` is
    its bootstrap confidence interval. ``throughput_improvement`` is the student's best
    throughput over the batch sizes divided by the teacher's best: what one machine serves
    when each model runs at its own best batch size. ``threads`` is the thread count that
    was requested (None: left as it was); ``sample_size`` the number of distinct example
    positions the batches were drawn from.

    ``repeats`` is the most timed repeats any batch size needed (each batch size's own count
    is in ``per_batch``), between ``min_repeats`` and ``max_repeats``. ``converged`` is True
    when every per-batch CI and ``latency_ci`` have a half-width of at most
    ``target_half_width`` × their ratio; False when ``max_repeats`` came first.
    """

    per_batch: list[LatencyStats]
    latency_improvement: float
    latency_ci: tuple[float, float]
    throughput_improvement: float
    threads: int | None
    warmup: int
    repeats: int
    sample_size: int
    min_repeats: int = DEFAULT_MIN_REPEATS
    max_repeats: int = DEFAULT_MAX_REPEATS
    target_half_width: float = DEFAULT_TARGET_HALF_WIDTH
    confidence: float = 0.95
    converged: bool = False
    #: True when the report was read back from the latency store (same models, settings and
    #: host as when it was measured) instead of being measured in this run.
    reused: bool = False

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LatencyReport:
        """The report :meth:`to_dict` wrote (KeyError / TypeError / ValueError if it is not)."""
        def num(v: Any) -> float:
            return float("nan") if v is None else float(v)

        per_batch = [LatencyStats(
            batch_size=int(b["batch_size"]), repeats=int(b["repeats"]),
            teacher_p50=num(b["teacher_p50"]), teacher_p90=num(b["teacher_p90"]),
            teacher_p99=num(b["teacher_p99"]), student_p50=num(b["student_p50"]),
            student_p90=num(b["student_p90"]), student_p99=num(b["student_p99"]),
            ratio_p50=num(b["ratio_p50"]),
            ratio_ci=(num(b["ratio_ci"][0]), num(b["ratio_ci"][1])),
            teacher_throughput=num(b["teacher_throughput"]),
            student_throughput=num(b["student_throughput"])) for b in doc["per_batch"]]
        if not per_batch:
            raise ValueError("no batch sizes")
        return cls(per_batch=per_batch, latency_improvement=num(doc["latency_improvement"]),
                   latency_ci=(num(doc["latency_ci"][0]), num(doc["latency_ci"][1])),
                   throughput_improvement=num(doc["throughput_improvement"]),
                   threads=doc["threads"], warmup=int(doc["warmup"]),
                   repeats=int(doc["repeats"]), sample_size=int(doc["sample_size"]),
                   min_repeats=int(doc["min_repeats"]), max_repeats=int(doc["max_repeats"]),
                   target_half_width=float(doc["target_half_width"]),
                   confidence=float(doc["confidence"]), converged=bool(doc["converged"]),
                   reused=True)

    @property
    def teacher_throughput(self) -> float:
        """The teacher's best throughput over the batch sizes (examples per second)."""
        return max(s.teacher_throughput for s in self.per_batch)

    @property
    def student_throughput(self) -> float:
        """The student's best throughput over the batch sizes (examples per second)."""
        return max(s.student_throughput for s in self.per_batch)

    @property
    def ci_half_width(self) -> float:
        """Half of ``latency_ci``'s width as a fraction of ``latency_improvement``."""
        return relative_half_width(self.latency_improvement, self.latency_ci)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers become None)."""
        return {
            "per_batch": [s.to_dict() for s in self.per_batch],
            "latency_improvement": json_float(self.latency_improvement),
            "latency_ci": [json_float(self.latency_ci[0]), json_float(self.latency_ci[1])],
            "ci_half_width": json_float(self.ci_half_width),
            "confidence": self.confidence,
            "throughput_improvement": json_float(self.throughput_improvement),
            "teacher_throughput": json_float(self.teacher_throughput),
            "student_throughput": json_float(self.student_throughput),
            "threads": self.threads,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "min_repeats": self.min_repeats,
            "max_repeats": self.max_repeats,
            "target_half_width": self.target_half_width,
            "converged": self.converged,
            "sample_size": self.sample_size,
            "reused": self.reused,
        }


def measure_latency(
    run_teacher: Run,
    run_student: Run,
    n_examples: int,
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    sample: int = 64,
    warmup: int = 2,
    repeats: int = DEFAULT_MIN_REPEATS,
    max_repeats: int | None = None,
    target_half_width: float = DEFAULT_TARGET_HALF_WIDTH,
    threads: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
    confidence: float = 0.95,
) -> LatencyReport:
    """Time teacher and student on the same batches, fairly, and compare them.

    :func:`measure_latencies` with one student; the arguments are the same.
    """
    return measure_latencies(
        run_teacher,
        {"student": run_student},
        n_examples,
        batch_sizes=batch_sizes,
        sample=sample,
        warmup=warmup,
        repeats=repeats,
        max_repeats=max_repeats,
        target_half_width=target_half_width,
        threads=threads,
        seed=seed,
        clock=clock,
        confidence=confidence,
    )["student"]


def measure_latencies(
    run_teacher: Run,
    run_students: Mapping[str, Run],
    n_examples: int,
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    sample: int = 64,
    warmup: int = 2,
    repeats: int = DEFAULT_MIN_REPEATS,
    max_repeats: int | None = None,
    target_half_width: float = DEFAULT_TARGET_HALF_WIDTH,
    threads: int | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
    confidence: float = 0.95,
) -> dict[str, LatencyReport]:
    """Time one teacher and several students on the same batches; one report per student.

    ``run_teacher`` and each value of ``run_students`` are called with a list of example
    positions (in ``range(n_examples)``) and run their model on those examples. The method:

    - ``min(sample, n_examples)`` positions are drawn without replacement with ``seed``;
      the batch of call ``j`` at batch size ``b`` is the window ``j*b .. j*b+b-1`` of that
      sample, wrapping around (so a batch larger than the sample repeats positions). Every
      model gets the same batch within a round.
    - per batch size, ``warmup`` rounds (teacher, then the students in order) run first and
      are not timed;
    - then timed rounds: teacher, s1, s2, … in even rounds and the reverse in odd ones, so
      slow drift (thermal, other load) cancels. The teacher is timed once per round and each
      student's ratio pairs its time with the teacher's of the same round;
    - after ``repeats`` rounds (and at least :data:`FEWEST_FOR_A_CI`), the rounds stop as
      soon as every student's p50 ratio CI at this batch size has a half-width of at most
      ``target_half_width`` × its ratio, or at ``max_repeats`` (default
      ``max(20, repeats)``); ``repeats == max_repeats`` gives a fixed count;
    - if ``threads`` is given and torch is *already imported*, torch's intra-op thread
      count is fixed to it for the measurement and restored afterwards (torch is never
      imported here);
    - p50/p90/p99 per model and batch size (numpy's linear interpolation), and a paired
      bootstrap (resampling rounds, teacher and student kept together; seeded by ``seed``
      and the batch size's position) CI of the p50 ratio: exactly the interval the stopping
      rule looked at.

    Raises ValueError on no students, a non-positive ``n_examples``, batch size, ``sample``
    or ``repeats``, ``max_repeats < repeats``, a negative ``warmup``, a
    ``target_half_width`` that is not positive or a ``confidence`` outside (0, 1).
    """
    sizes = [int(b) for b in batch_sizes]
    most = max(DEFAULT_MAX_REPEATS, int(repeats)) if max_repeats is None else int(max_repeats)
    _check_arguments(run_students, n_examples, sizes, sample, repeats, most, warmup,
                     target_half_width, confidence)
    rng = np.random.default_rng(seed)
    m = min(int(sample), int(n_examples))
    positions = [int(p) for p in rng.choice(int(n_examples), size=m, replace=False)]
    names = list(run_students)
    order: list[tuple[str | None, Run]] = [(None, run_teacher)]
    order += [(name, run_students[name]) for name in names]

    def batch(j: int, b: int) -> list[int]:
        return [positions[(j * b + i) % m] for i in range(b)]

    def narrow(k: int, times: Mapping[str | None, list[float]]) -> bool:
        if len(times[None]) < max(repeats, FEWEST_FOR_A_CI):
            return False
        for name in names:
            ratio, ci = ratio_interval(times[None], times[name], seed=seed, index=k,
                                       confidence=confidence)
            if not relative_half_width(ratio, ci) <= target_half_width:
                return False
        return True

    per_size: list[dict[str | None, list[float]]] = []
    with _torch_threads(threads):
        for k, b in enumerate(sizes):
            for j in range(warmup):
                for _, run in order:
                    run(batch(j, b))
            gc.collect()  # so a collection owed to the warm-up does not land on one model
            times: dict[str | None, list[float]] = {key: [] for key, _ in order}
            for r in range(most):
                items = batch(warmup + r, b)
                for key, run in order if r % 2 == 0 else order[::-1]:
                    started = clock()
                    run(items)
                    times[key].append(clock() - started)
                if narrow(k, times):
                    break
            per_size.append(times)

    teacher_times = [np.asarray(t[None], dtype=float) for t in per_size]
    return {
        name: _latency_report(
            sizes,
            teacher_times,
            [np.asarray(t[name], dtype=float) for t in per_size],
            threads=threads,
            warmup=warmup,
            min_repeats=int(repeats),
            max_repeats=most,
            target_half_width=float(target_half_width),
            sample_size=m,
            seed=seed,
            confidence=confidence,
        )
        for name in names
    }


def _check_arguments(
    run_students: Mapping[str, Run],
    n_examples: int,
    sizes: list[int],
    sample: int,
    repeats: int,
    most: int,
    warmup: int,
    target_half_width: float,
    confidence: float,
) -> None:
    """The ValueErrors of :func:`measure_latencies`."""
    if not run_students:
        raise ValueError("run_students must name at least one student")
    if n_examples < 1:
        raise ValueError(f"n_examples must be at least 1, got {n_examples}")
    if not sizes or any(b < 1 for b in sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {sizes}")
    if sample < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"need sample >= 1, repeats >= 1, warmup >= 0; got {sample}, {repeats}, {warmup}"
        )
    if most < repeats:
        raise ValueError(f"max_repeats ({most}) must be at least repeats ({repeats})")
    if not target_half_width > 0:
        raise ValueError(f"target_half_width must be > 0, got {target_half_width}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads fixed to ``threads`` inside, restored after; a no-op when
    ``threads`` is None or torch is not imported (it is never imported here)."""
    torch = sys.modules.get("torch") if threads is not None else None
    if torch is None or threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def ratio_interval(
    teacher_times: Sequence[float] | np.ndarray,
    student_times: Sequence[float] | np.ndarray,
    *,
    seed: int = 0,
    index: int = 0,
    confidence: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """Teacher p50 / student p50 and its paired bootstrap CI (percentile method).

    ``teacher_times[r]`` and ``student_times[r]`` are the two models' times in round ``r``;
    a resample draws rounds, keeping each round's pair. Seeded by ``(seed, index)`` (index:
    the batch size's position), so the interval is a pure function of its inputs: the one
    :func:`measure_latencies` stops on is the one it reports.
    """
    t = np.asarray(teacher_times, dtype=float)
    s = np.asarray(student_times, dtype=float)
    boot = _bootstrap(t, s, seed, index)
    return _ratio(float(np.median(t)), float(np.median(s))), _interval(boot, confidence)


def relative_half_width(ratio: float, ci: tuple[float, float]) -> float:
    """``(hi - lo) / 2 / ratio``; NaN when the ratio or a bound is undefined."""
    lo, hi = ci
    if not (math.isfinite(ratio) and ratio > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return math.nan
    return (hi - lo) / 2.0 / ratio


def _bootstrap(t: np.ndarray, s: np.ndarray, seed: int, index: int) -> np.ndarray:
    """Bootstrap p50 ratios over rounds (teacher and student of a round kept together)."""
    rng = np.random.default_rng([int(seed), int(index)])
    idx = rng.integers(0, len(t), size=(BOOTSTRAP_RESAMPLES, len(t)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.median(t[idx], axis=1) / np.median(s[idx], axis=1))


def _latency_report(
    sizes: list[int],
    teacher_times: list[np.ndarray],
    student_times: list[np.ndarray],
    *,
    threads: int | None,
    warmup: int,
    min_repeats: int,
    max_repeats: int,
    target_half_width: float,
    sample_size: int,
    seed: int,
    confidence: float,
) -> LatencyReport:
    """Percentiles, ratios and bootstrap CIs from the raw per-round times."""
    per_batch: list[LatencyStats] = []
    log_boot = np.zeros(BOOTSTRAP_RESAMPLES)
    log_point = 0.0
    for k, (b, t, s) in enumerate(zip(sizes, teacher_times, student_times, strict=True)):
        tp = [float(v) for v in np.percentile(t, _PERCENTILES)]
        sp = [float(v) for v in np.percentile(s, _PERCENTILES)]
        ratio = _ratio(tp[0], sp[0])
        boot = _bootstrap(t, s, seed, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_boot = log_boot + np.log(boot)
        log_point += math.log(ratio) if ratio > 0 else math.nan
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
                ratio_ci=_interval(boot, confidence),
                teacher_throughput=_ratio(b, tp[0]),
                student_throughput=_ratio(b, sp[0]),
                repeats=len(t),
            )
        )
    n_sizes = len(sizes)
    improvement = math.exp(log_point / n_sizes) if math.isfinite(log_point) else math.nan
    with np.errstate(over="ignore", invalid="ignore"):
        geo_boot = np.exp(log_boot / n_sizes)
    latency_ci = _interval(geo_boot, confidence)
    widths = [s.ci_half_width for s in per_batch]
    widths.append(relative_half_width(improvement, latency_ci))
    enough = all(s.repeats >= FEWEST_FOR_A_CI for s in per_batch)
    teacher_best = max(s.teacher_throughput for s in per_batch)
    student_best = max(s.student_throughput for s in per_batch)
    return LatencyReport(
        per_batch=per_batch,
        latency_improvement=improvement,
        latency_ci=latency_ci,
        throughput_improvement=_ratio(student_best, teacher_best),
        threads=threads,
        warmup=warmup,
        repeats=max(s.repeats for s in per_batch),
        sample_size=sample_size,
        min_repeats=min_repeats,
        max_repeats=max_repeats,
        target_half_width=target_half_width,
        confidence=confidence,
        # NaN compares False: an undefined width never counts as narrow.
        converged=enough and all(w <= target_half_width for w in widths),
    )


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values; NaN bounds when any value is undefined."""
    if not np.all(np.isfinite(values)):
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is not positive (a clock that could not resolve it)."""
    return float(num) / float(den) if den > 0 else math.nan


def json_float(value: float | None) -> float | None:
    """``value`` as a JSON number; None for a missing or non-finite one."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
