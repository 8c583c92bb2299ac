"""What a distillation cost and when it pays for itself: ``metadata.training`` facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.economics._fields import Source, integer, non_negative, unknown_key
from harness.errors import SpecError

TRAINING_KEYS = ("gpu_hours", "usd", "examples")


@dataclass(frozen=True)
class TrainingFacts:
    """A student's validated ``metadata.training``: what its distillation cost."""

    gpu_hours: float | None = None
    usd: float | None = None
    examples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_training(
    raw: Mapping[str, Any] | None,
    source: Source = None,
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
        if key not in TRAINING_KEYS:
            raise unknown_key(str(key), TRAINING_KEYS, source, where)

    def number(key: str) -> float | None:
        value = raw.get(key)
        return None if value is None else non_negative(value, source, f"{where}.{key}")

    examples = raw.get("examples")
    return TrainingFacts(
        gpu_hours=number("gpu_hours"),
        usd=number("usd"),
        examples=None if examples is None else integer(examples, 0, source, f"{where}.examples"),
    )


def training_efficiency(quality_retained: float, gpu_hours: float | None) -> float | None:
    """Quality retained (e.g. student/teacher accuracy) per GPU-hour of distillation.

    None when the GPU-hours are unknown or not positive.
    """
    if gpu_hours is None or not gpu_hours > 0:
        return None
    return quality_retained / gpu_hours


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
