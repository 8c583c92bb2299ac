"""The economics scorecard of a distillation: size, speed, cost, training payback, candidates.

One module per job: :mod:`~harness.economics.settings` validates a suite's ``economics:``
section (at load time), :mod:`~harness.economics.latency` times teacher and students,
:mod:`~harness.economics.cost` prices serving, :mod:`~harness.economics.training` prices the
distillation and its payback, :mod:`~harness.economics.frontier` ranks candidate students and
:mod:`~harness.economics.scorecard` puts one student's figures together for the report. The
frontier plot is drawn by :mod:`harness.report.frontier_plot`.

Everything here is plain Python over plain numbers; the only measurement is latency, which
times callables with an injectable clock. The names below are the package's public API.
"""

from __future__ import annotations

from harness.economics.cost import cost_per_million, serving_cost, size_reduction
from harness.economics.frontier import Candidate, pareto_frontier, recommend
from harness.economics.latency import (
    BOOTSTRAP_RESAMPLES,
    FEWEST_FOR_A_CI,
    LatencyReport,
    LatencyStats,
    measure_latencies,
    measure_latency,
    ratio_interval,
    relative_half_width,
)
from harness.economics.scorecard import METRICS, TIMING_KEY, TIMING_METRICS, scorecard
from harness.economics.settings import parse_economics, parse_training
from harness.economics.training import payback_point, training_efficiency
from harness.spec_types import EconomicsSettings, TrainingFacts

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "FEWEST_FOR_A_CI",
    "METRICS",
    "TIMING_KEY",
    "TIMING_METRICS",
    "Candidate",
    "EconomicsSettings",
    "LatencyReport",
    "LatencyStats",
    "TrainingFacts",
    "cost_per_million",
    "measure_latencies",
    "measure_latency",
    "pareto_frontier",
    "parse_economics",
    "parse_training",
    "payback_point",
    "ratio_interval",
    "recommend",
    "relative_half_width",
    "scorecard",
    "serving_cost",
    "size_reduction",
    "training_efficiency",
]

