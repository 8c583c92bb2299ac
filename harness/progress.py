"""Progress of model runs: one line redrawn in place on a terminal; off a terminal (a CI log)
one line per stage, when it ends."""

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


#: The rate's unit per unit of work.
_RATE = {"examples": "ex/s", "requests": "requests/s"}


class _Stage:
    """What every progress line knows: its label, where it writes, its clock and its unit."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        unit: str = "examples",
    ):
        self.label = label
        self.stream = stream
        self.clock = clock
        self.unit = unit
        self._begin()

    def _begin(self) -> None:
        """The state of a progress line before its first update."""


class LineProgress(_Stage):
    """Redraws ``"<label>: done/total examples, rate ex/s, ETA 1m05s"`` in place; a newline
    when done (without the ETA). An endpoint model counts the requests of this run only (its
    cached answers are not work): its ``unit`` is ``requests`` and its rate requests/s."""

    start: float
    last_draw: float | None
    last_done: int
    width: int
    finished: bool

    def _begin(self) -> None:
        self.start = self.clock()
        self.last_draw, self.last_done, self.width, self.finished = None, 0, 0, False

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
        line = f"{self.label}: {done}/{total} {self.unit}, {rate:.1f} {_RATE.get(self.unit, '/s')}"
        if not final and rate > 0:
            line += f", ETA {_duration((total - done) / rate)}"
        pad = " " * max(0, self.width - len(line))
        self.stream.write(f"\r{line}{pad}" + ("\n" if final else ""))
        self.stream.flush()
        self.width = len(line)
        self.last_draw = now
        self.finished = final


class StageProgress(_Stage):
    """Off a terminal: nothing while a stage runs, then one line when it ends,
    ``"<label>: 600/600 requests in 4.9s, 122.4 requests/s"`` — a CI log gets no ``\\r``."""

    start: float | None
    last_done: int

    def _begin(self) -> None:
        self.start, self.last_done = None, 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.start is None or done < self.last_done:  # a new stage (or a new pass)
            self.start = now
        self.last_done = done
        if done < total:
            return
        elapsed = now - self.start
        rate = f", {done / elapsed:.1f} {_RATE.get(self.unit, '/s')}" if elapsed > 0 else ""
        self.stream.write(f"{self.label}: {done}/{total} {self.unit} in {elapsed:.1f}s{rate}\n")
        self.stream.flush()
        self.start, self.last_done = None, 0


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
    """A progress callback writing on ``stream`` (default stdout, with the run's summary: stderr
    stays for the one-line error of a failed run), or None when ``enabled`` is False (quiet).

    ``enabled=None``: on a terminal outside CI (``stream.isatty()`` and no ``CI`` environment
    variable) one line redrawn in place (:class:`LineProgress`); otherwise one line per stage
    when it ends (:class:`StageProgress`), so a CI log says what ran, free of ``\\r`` lines.
    ``enabled=True`` always redraws in place.
    """
    out = stream if stream is not None else sys.stdout
    if enabled is False:
        return None
    if enabled or _interactive(out):
        return LineProgress(label, out)
    return StageProgress(label, out)
