"""Checks of single fields of an ``economics:`` section or a ``metadata.training``.

Each returns the value in its plain type or raises :class:`~harness.errors.SpecError` naming
the file, the field path and what was expected.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import SpecError

Source = Path | str | None


def unknown_key(key: str, known: Sequence[str], source: Source, where: str) -> SpecError:
    """The error for a key that is not one of ``known`` (with a did-you-mean hint)."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SpecError(
        f"unknown key {key!r}{hint}; expected one of: {', '.join(known)}",
        file=source,
        field=f"{where}.{key}",
    )


def non_negative(value: Any, source: Source, where: str, unit: str | None = None) -> float:
    """``value`` as a float, or a SpecError when it is not a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        what = f"a number >= 0 ({unit})" if unit else "a number >= 0"
        raise SpecError(f"expected {what}, got {value!r}", file=source, field=where)
    return float(value)


def integer(value: Any, minimum: int, source: Source, where: str) -> int:
    """``value`` as an int, or a SpecError when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(
            f"expected an integer >= {minimum}, got {value!r}", file=source, field=where
        )
    return int(value)


def fraction(value: Any, source: Source, where: str) -> float:
    """``value`` as a float in (0, 1], or a SpecError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= 1
    ):
        raise SpecError(
            f"expected a number > 0 and <= 1 (a fraction of the ratio), got {value!r}",
            file=source,
            field=where,
        )
    return float(value)
