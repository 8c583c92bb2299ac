"""How the reports write numbers: one helper, so every renderer shows a figure the same way."""

from __future__ import annotations

import math
from typing import Any


def fmt(x: Any, digits: int = 3, *, missing: str = "-") -> str:
    """``x`` with ``digits`` decimals (a float), as is (an int or text), ``missing`` for None
    or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)
