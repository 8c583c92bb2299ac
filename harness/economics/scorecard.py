"""The report's ``economics`` section and the gateable economics metrics of one student.

Timing is noisy by nature, so every value derived from a measured time lives under the
``"timing"`` key of the section (:data:`TIMING_KEY`) and every gateable metric derived from
one is named in :data:`TIMING_METRICS`: a comparison of two reports drops them, and the rest
of the report stays deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.economics.cost import serving_cost, size_reduction
from harness.economics.latency import LatencyReport, json_float
from harness.economics.settings import parse_economics, parse_training
from harness.economics.training import payback_point, training_efficiency
from harness.metrics import get_metric
from harness.spec_types import EconomicsSettings, TrainingFacts

if TYPE_CHECKING:  # facts are only read: importing the models package is not needed
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

#: Every gateable economics metric and whether a higher value is better. The direction is
#: declared once, in the metric registry (:mod:`harness.metrics`); this is a view of it.
METRICS: dict[str, bool] = {
    name: get_metric(name).higher_is_better
    for name in ("size_reduction", "size_reduction_bytes", "latency_improvement",
                 "throughput_improvement", "teacher_cost_per_million", "student_cost_per_million",
                 "cost_reduction", "payback_predictions", "quality_retained_per_gpu_hour")
}


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

    ``economics`` is the suite's ``economics:`` section (or its
    :func:`~harness.economics.settings.parse_economics` result), ``training`` the student's
    ``metadata.training``, ``quality_retained`` the student's quality over the teacher's
    (e.g. accuracy ratio).

    The metrics dict holds every metric of :data:`METRICS` that can be computed from what
    was given, as finite floats; one that cannot (an unknown fact, no latency measured, a
    student that is not cheaper so never pays back) is absent. Every value derived from a
    measured time sits under ``section["timing"]`` and is named in :data:`TIMING_METRICS`;
    the timing section also says how many repeats the latency took, its CI and whether the
    CI reached its target width (``latency_repeats``, ``latency_ci``,
    ``latency_ci_half_width``, ``latency_converged``).
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
    timing["latency_ci"] = [json_float(v) for v in latency.latency_ci]
    timing["latency_ci_half_width"] = json_float(latency.ci_half_width)
    timing["latency_repeats"] = latency.repeats
    timing["latency_converged"] = latency.converged
    timing["throughput_improvement"] = put("throughput_improvement", latency.throughput_improvement)
    teacher_cpm = serving_cost(settings.teacher_usd_per_hour, latency.teacher_throughput)
    student_cpm = serving_cost(settings.student_usd_per_hour, latency.student_throughput)
    timing["teacher_cost_per_million"] = put("teacher_cost_per_million", teacher_cpm)
    timing["student_cost_per_million"] = put("student_cost_per_million", student_cpm)
    reduction_cost, payback = savings(teacher_cpm, student_cpm, facts.usd)
    timing["cost_reduction"] = put("cost_reduction", reduction_cost)
    timing["payback_predictions"] = put("payback_predictions", payback)
    section[TIMING_KEY] = timing
    return section, metrics


def savings(teacher_cost: float | None, student_cost: float | None,
            training_usd: float | None) -> tuple[float | None, float | None]:
    """``cost_reduction`` (1 - student / teacher) and ``payback_predictions`` from the two
    models' costs per million predictions, however each is priced; None where not computable.

    The one place both figures are derived: from the costs by the hour (with a timing) in
    :func:`scorecard`, and again in :func:`with_token_costs` once a cost by the token
    replaces one by the hour.
    """
    if teacher_cost is None or student_cost is None:
        return None, None
    reduction = 1.0 - student_cost / teacher_cost if teacher_cost > 0 else None
    payback = (payback_point(training_usd, teacher_cost, student_cost)
               if training_usd is not None else None)
    return reduction, payback


#: The figures derived from both models' costs.
SAVINGS = ("cost_reduction", "payback_predictions")


def with_token_costs(section: dict[str, Any], figures: dict[str, float], errors: dict[str, str],
                     token_figures: Mapping[str, float], training_usd: float | None) -> None:
    """Fold the token economics' figures (costs by the token, request latency) into a
    scorecard's ``section`` / ``figures``: they replace the ones by the hour, and what derives
    from the two costs (:data:`SAVINGS`) is derived again from the costs that now stand."""
    if section.get(TIMING_KEY) is None and token_figures:
        section[TIMING_KEY] = {}
    timing = section.get(TIMING_KEY)
    if timing is not None:
        timing.update(token_figures)
    figures.update(token_figures)
    for name in token_figures:
        errors.pop(name, None)
    if not {"teacher_cost_per_million", "student_cost_per_million"} & set(token_figures):
        return
    assert timing is not None
    for name in SAVINGS:
        figures.pop(name, None)
        timing.pop(name, None)
    teacher, student = (figures.get("teacher_cost_per_million"),
                        figures.get("student_cost_per_million"))
    if teacher is None or student is None:
        for name in SAVINGS:
            errors.setdefault(name, "needs the cost per million of both models (by the hour "
                              "with a timing, or by the token with usage)")
        return
    for name, value in zip(SAVINGS, savings(teacher, student, training_usd), strict=True):
        if value is not None:
            figures[name] = timing[name] = value
            errors.pop(name, None)
