"""How the harness writes numbers: one module, so every report, message and table shows a figure
the same way. Every function takes None (and NaN) and writes ``missing`` for it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt(x: Any, digits: int = 3, *, missing: str = "-") -> str:
    """``x`` with ``digits`` decimals (a float), as is (an int or text), ``missing`` for None
    or NaN."""
    if _missing(x):
        return missing
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def signed(x: float | None, digits: int = 3, *, missing: str = "-") -> str:
    """``x`` with its sign and ``digits`` decimals (a difference: ``+0.021``, ``-0.220``)."""
    return missing if _missing(x) else f"{x:+.{digits}f}"


def interval(ci: Sequence[float] | None, digits: int = 3, *, missing: str = "-") -> str:
    """A confidence interval of differences: ``[-0.287, -0.162]``."""
    if not ci:
        return missing
    return f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def pvalue(p: float | None, *, missing: str = "-") -> str:
    """A p- or q-value with four decimals, ``<0.0001`` below that."""
    if _missing(p):
        return missing
    assert p is not None
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def general(x: float | None, digits: int = 3, *, missing: str = "n/a") -> str:
    """``x`` to ``digits`` significant digits (``0.123``, ``1.5e+04``)."""
    return missing if _missing(x) else format(x, f".{digits}g")


def adaptive(x: float | None, digits: int = 4, *, missing: str = "n/a") -> str:
    """``digits`` decimals, or significant digits for a very large or very small ``x`` (a
    check's value, bound or p-value in its explanation)."""
    if _missing(x):
        return missing
    assert x is not None
    if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def percent(x: float | None, digits: int = 1, *, short: bool = False,
            missing: str = "-") -> str:
    """A share as a percentage: ``12.5%``. ``short``: ``40%`` for ``40.0%`` and ``<0.1%`` for a
    share too small to show."""
    if _missing(x):
        return missing
    assert x is not None
    if short and 0 < x < 10 ** -(digits + 2):
        return f"<{10 ** -digits:.{digits}f}%"
    text = f"{100 * x:.{digits}f}%"
    return text.replace(f".{'0' * digits}%", "%") if short else text


def share(x: float | None) -> str:
    """A share of rows in a sentence: ``40%``, ``12.5%``, ``<0.1%``."""
    return percent(x, short=True)
