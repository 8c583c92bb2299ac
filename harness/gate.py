"""Turning rubric criteria into checks and checks into verdicts."""

from __future__ import annotations


def breaches(value: float, *, min: float | None = None, max: float | None = None) -> bool:
    """Whether ``value`` is outside the bounds ``[min, max]`` (either may be None)."""
    if min is not None and value < min:
        return True
    return max is not None and value > max


def decide(
    *,
    value: float | None,
    min: float | None,
    max: float | None,
    n: int,
    min_support: int,
    severity: str = "fail",
    decision: str = "significant",
    alpha: float = 0.05,
    p_value: float | None = None,
    q_value: float | None = None,
    testable: bool = True,
    strict: bool = False,
) -> str:
    """The verdict of one check, as DESIGN's "Verdicts" section defines it.

    ``p_value`` / ``q_value`` are one-sided p-values of "the true value meets the threshold";
    ``q_value`` (Benjamini–Hochberg adjusted) is used when given (per-slice and discovered
    checks), else ``p_value`` (overall checks, at ``alpha``). ``testable`` False means the
    metric has no sampling distribution (a size, a measured latency): the point value decides.
    """
    if value is None:
        return "error"
    if not breaches(value, min=min, max=max):
        return "pass"
    if severity == "warn":
        return "warn"
    if testable and n < min_support:
        return "fail" if strict else "inconclusive"
    if decision == "point" or not testable:
        return "fail"
    p = q_value if q_value is not None else p_value
    if p is not None and p < alpha:
        return "fail"
    return "fail" if strict else "inconclusive"
