"""The candidates' Pareto frontier as a PNG: quality ratio against latency.

matplotlib is an optional extra, imported only when a plot is drawn.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.economics.frontier import Candidate
from harness.fileio import atomic_write

#: Bump with a change of the drawing that the code hash does not show.
_MEMO_VERSION = 1


def frontier_plot(
    candidates: Sequence[Candidate],
    frontier: Sequence[str],
    recommended: str | None,
    path: Path,
    *,
    teacher_latency: float | None = None,
    threshold: float | None = None,
) -> Path | None:
    """Draw quality ratio against latency for the candidates as a PNG at ``path``.

    Frontier candidates are joined by a line, failing ones drawn as crosses, the recommended
    one ringed; marker area grows with size. The teacher (quality ratio 1 by definition) is a
    point at ``teacher_latency`` seconds, the rubric's quality-ratio ``threshold`` a dashed
    line. The file is written atomically (temporary file in the same folder, then renamed).
    Returns ``path``, or None when matplotlib (an optional extra) is not installed.
    """
    png = frontier_png(candidates, frontier, recommended, teacher_latency=teacher_latency,
                       threshold=threshold)
    if png is None:
        return None
    path = Path(path)
    if not (path.is_file() and path.stat().st_size == len(png) and path.read_bytes() == png):
        atomic_write(path, png)  # an unchanged plot is not written again
    return path


def frontier_png(
    candidates: Sequence[Candidate],
    frontier: Sequence[str],
    recommended: str | None,
    *,
    teacher_latency: float | None = None,
    threshold: float | None = None,
) -> bytes | None:
    """The bytes of :func:`frontier_plot`'s PNG (None without matplotlib).

    Within a run's memo (:mod:`harness.memo`) the PNG of the same plotted data (every field
    of every candidate, the frontier, the recommendation, the teacher's latency, the
    threshold), drawn by the same code and matplotlib, is read back instead of drawn again.
    """
    from harness.memo import code_version, memo_bytes, memo_key

    def draw() -> bytes | None:
        fig = frontier_figure(candidates, frontier, recommended,
                              teacher_latency=teacher_latency, threshold=threshold)
        if fig is None:
            return None
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    key = memo_key("frontier_plot.png", _MEMO_VERSION,
                   code_version(("harness.report.frontier_plot",), ("matplotlib", "numpy")),
                   [dataclasses.astuple(c) for c in candidates], list(frontier), recommended,
                   None if teacher_latency is None else float(teacher_latency),
                   None if threshold is None else float(threshold))
    return memo_bytes("frontier", key, draw)


def frontier_figure(
    candidates: Sequence[Candidate],
    frontier: Sequence[str],
    recommended: str | None,
    *,
    teacher_latency: float | None = None,
    threshold: float | None = None,
) -> Any:
    """The matplotlib ``Figure`` of :func:`frontier_plot` (None without matplotlib)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    on_front = set(frontier)
    # Latency arrives in seconds; milliseconds read better. A model whose latency could not be
    # measured (a predictions file) has 0: the axis says so rather than showing a unit.
    measured = any(c.latency > 0 for c in candidates) or bool(teacher_latency)
    scale = 1000.0 if measured else 1.0
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    biggest = max((c.size for c in candidates), default=1.0) or 1.0
    for c in candidates:
        x = c.latency * scale
        area = 40.0 + 260.0 * max(c.size, 0.0) / biggest
        color = "tab:blue" if c.name in on_front else "tab:gray"
        marker = "o" if c.passes else "x"
        ax.scatter([x], [c.quality_ratio], s=area, c=color, marker=marker, alpha=0.8)
        ax.annotate(c.name, (x, c.quality_ratio), textcoords="offset points", xytext=(6, 4),
                    fontsize=8)
        if c.name == recommended:
            ax.scatter([x], [c.quality_ratio], s=area * 2.2, facecolors="none",
                       edgecolors="tab:green", linewidths=2.0)
    front = sorted((c for c in candidates if c.name in on_front), key=lambda c: c.latency)
    if len(front) > 1:
        ax.plot([c.latency * scale for c in front], [c.quality_ratio for c in front],
                color="tab:blue", linewidth=1.0, alpha=0.6)
    if teacher_latency is not None and math.isfinite(teacher_latency):
        ax.scatter([teacher_latency * scale], [1.0], s=120, c="black", marker="*", zorder=3)
        ax.annotate("teacher", (teacher_latency * scale, 1.0), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    if threshold is not None and math.isfinite(threshold):
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.0)
        ax.annotate(f"quality-ratio threshold {threshold:g}", (0.01, threshold),
                    xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(2, 3), fontsize=8, color="tab:red")
    ax.set_xlabel("latency p50 per batch (ms)" if measured else "latency (not measured)")
    ax.set_ylabel("quality ratio (student / teacher)")
    title = "Candidate students"
    if recommended is not None:
        title += f" — recommended: {recommended}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.margins(0.12)  # markers and their labels stay inside the axes
    return fig


def quality_threshold(checks: Sequence[Mapping[str, Any]]) -> float | None:
    """The rubric's quality-ratio floor: the ``min`` of the overall ``teacher_ratio`` check."""
    for c in checks:
        if c.get("compare") == "teacher_ratio" and c.get("slice") == "overall":
            value = (c.get("threshold") or {}).get("min")
            if isinstance(value, (int, float)):
                return float(value)
    return None


def _p50(row: Mapping[str, Any], who: str) -> float | None:
    """``who``'s p50 seconds at the largest batch size of a candidate row's timing (None if none)."""
    timing = row.get("timing")
    if isinstance(timing, Mapping) and isinstance(timing.get("latency"), Mapping):
        timing = timing["latency"]  # a candidate's economics timing holds the latency report
    per_batch = (timing.get("per_batch") or []) if isinstance(timing, Mapping) else []
    value = per_batch[-1].get(f"{who}_p50") if per_batch else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def teacher_latency(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The teacher's p50 seconds, as timed against the candidates (the report's rows)."""
    return next((t for t in (_p50(r, "teacher") for r in rows) if t is not None), None)


def report_frontier(suite: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`frontier_png`'s arguments from a report's suite (None without candidates)."""
    econ = suite.get("economics") or {}
    rows = econ.get("candidates") or []
    candidates: list[Candidate] = []
    for row in rows:
        quality = row.get("quality_ratio")
        if not isinstance(quality, (int, float)) or not math.isfinite(quality):
            continue
        candidates.append(Candidate(
            name=str(row.get("name")), quality_ratio=float(quality),
            latency=_p50(row, "student") or 0.0,
            size=float(row.get("params") or row.get("bytes") or 0), passes=bool(row.get("passes"))))
    if not candidates:
        return None
    return {"candidates": candidates, "frontier": list(econ.get("frontier") or []),
            "recommended": econ.get("recommended"), "teacher_latency": teacher_latency(rows),
            "threshold": quality_threshold(suite.get("checks") or [])}
