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
