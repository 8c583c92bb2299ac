"""The candidates' Pareto frontier as a PNG: quality ratio against latency.

matplotlib is an optional extra, imported only when a plot is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from harness.economics.frontier import Candidate
from harness.fileio import atomic_write


def frontier_plot(
    candidates: Sequence[Candidate],
    frontier: Sequence[str],
    recommended: str | None,
    path: Path,
) -> Path | None:
    """Draw quality ratio against latency for the candidates as a PNG at ``path``.

    Frontier candidates are joined by a line, failing ones drawn as crosses, the recommended
    one ringed; marker area grows with size. The file is written atomically (temporary file
    in the same folder, then renamed). Returns ``path``, or None when matplotlib (an
    optional extra) is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    path = Path(path)
    on_front = set(frontier)
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    biggest = max((c.size for c in candidates), default=1.0) or 1.0
    for c in candidates:
        area = 40.0 + 260.0 * max(c.size, 0.0) / biggest
        color = "tab:blue" if c.name in on_front else "tab:gray"
        marker = "o" if c.passes else "x"
        ax.scatter([c.latency], [c.quality_ratio], s=area, c=color, marker=marker, alpha=0.8)
        ax.annotate(
            c.name,
            (c.latency, c.quality_ratio),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
        if c.name == recommended:
            ax.scatter(
                [c.latency],
                [c.quality_ratio],
                s=area * 2.2,
                facecolors="none",
                edgecolors="tab:green",
                linewidths=2.0,
            )
    front = sorted((c for c in candidates if c.name in on_front), key=lambda c: c.latency)
    if len(front) > 1:
        ax.plot(
            [c.latency for c in front],
            [c.quality_ratio for c in front],
            color="tab:blue",
            linewidth=1.0,
            alpha=0.6,
        )
    ax.set_xlabel("student latency (p50)")
    ax.set_ylabel("quality ratio (student / teacher)")
    title = "Candidate students"
    if recommended is not None:
        title += f" — recommended: {recommended}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write(path, buffer.getvalue())
    return path
