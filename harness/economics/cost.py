"""What serving a model costs: its size against the teacher's, USD per million predictions."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # facts are only read: importing the models package is not needed
    from harness.models.base import ModelFacts


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


def serving_cost(usd_per_hour: float | None, throughput: float) -> float | None:
    """:func:`cost_per_million`, or None when the price is unknown or the throughput unmeasured."""
    if usd_per_hour is None or not math.isfinite(throughput) or throughput <= 0:
        return None
    return cost_per_million(usd_per_hour, throughput)
