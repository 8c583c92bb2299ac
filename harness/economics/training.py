"""What a distillation cost and when it pays for itself, from ``metadata.training`` facts
(:class:`~harness.spec_types.TrainingFacts`, validated when the suite loads)."""

from __future__ import annotations


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
