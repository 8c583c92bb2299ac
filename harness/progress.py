"""A one-line progress display for model runs on a terminal (quiet in CI logs)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from harness.models.base import Progress

#: Fewest seconds between two redraws (at most 4 updates a second).
MIN_INTERVAL_S = 0.25


def _interactive(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("CI")


class LineProgress:
    """Redraws ``"<label>: done/total examples, rate ex/s, ETA 1m05s"`` in place; a newline
    when done (without the ETA). An endpoint model counts the requests of this run only (its
    cached answers are not work), so its rate is requests/s."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.stream = stream
        self.clock = clock
        self.start = clock()
        self.last_draw: float | None = None
        self.last_done = 0
        self.width = 0
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done < self.last_done or self.finished:  # a new pass over the data: start over
            self.start, self.last_draw, self.width, self.finished = now, None, 0, False
        self.last_done = done
        final = done >= total
        if not final and self.last_draw is not None and now - self.last_draw < MIN_INTERVAL_S:
            return
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        line = f"{self.label}: {done}/{total} examples, {rate:.1f} ex/s"
        if not final and rate > 0:
            line += f", ETA {_duration((total - done) / rate)}"
        pad = " " * max(0, self.width - len(line))
        self.stream.write(f"\r{line}{pad}" + ("\n" if final else ""))
        self.stream.flush()
        self.width = len(line)
        self.last_draw = now
        self.finished = final


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``: an ETA short enough for one line."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def make_progress(
    label: str, *, enabled: bool | None = None, stream: TextIO | None = None
) -> Progress | None:
    """A progress callback that draws one updating line on ``stream`` (default stderr).

    ``enabled=None`` draws only on a terminal outside CI (``stream.isatty()`` and no ``CI``
    environment variable); otherwise returns None, so CI logs stay free of ``\\r`` lines.
    """
    out = stream if stream is not None else sys.stderr
    on = _interactive(out) if enabled is None else enabled
    return LineProgress(label, out) if on else None
