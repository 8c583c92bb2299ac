"""Candidate students: the Pareto frontier of quality, latency and size, and the pick."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


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
