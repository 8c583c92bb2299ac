"""Slice names, as DESIGN fixes them.

``by:`` slices and discovered pockets are named by their predicates: ``feature=value``
joined with `` & ``; a numeric range as ``n_words<10`` or ``10<=n_words<30``; values written
as JSON writes them, strings bare (``has_negation=true``, ``lang=de``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from harness.results import Predicate

_SYMBOL = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def format_value(value: Any) -> str:
    """A value as it appears in a slice name: strings bare, the rest as JSON writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".6g")
    if hasattr(value, "item"):  # numpy scalar
        return format_value(value.item())
    return json.dumps(value, sort_keys=True, default=str)


def _range_name(feature: str, preds: Sequence[Predicate]) -> str:
    lower = [p for p in preds if p.op in ("gt", "gte")]
    upper = [p for p in preds if p.op in ("lt", "lte")]
    if len(lower) == 1 and len(upper) == 1:
        lo, hi = lower[0], upper[0]
        lo_sym = "<" if lo.op == "gt" else "<="
        return f"{format_value(lo.value)}{lo_sym}{feature}{_SYMBOL[hi.op]}{format_value(hi.value)}"
    return " & ".join(f"{feature}{_SYMBOL[p.op]}{format_value(p.value)}" for p in preds)


def predicate_name(predicates: Sequence[Predicate]) -> str:
    """The name of the slice the conjunction of ``predicates`` selects.

    Predicates on the same feature with range ops are written as one range; features keep
    the order in which they first appear.
    """
    order: list[str] = []
    by_feature: dict[str, list[Predicate]] = {}
    for p in predicates:
        if p.feature not in by_feature:
            order.append(p.feature)
            by_feature[p.feature] = []
        by_feature[p.feature].append(p)
    parts: list[str] = []
    for feature in order:
        preds = by_feature[feature]
        ranges = [p for p in preds if p.op in _SYMBOL]
        for p in preds:
            if p.op == "eq":
                parts.append(f"{feature}={format_value(p.value)}")
            elif p.op == "ne":
                parts.append(f"{feature}!={format_value(p.value)}")
            elif p.op == "in":
                parts.append(f"{feature} in [{', '.join(format_value(v) for v in p.value)}]")
            elif p.op == "not_in":
                parts.append(f"{feature} not in [{', '.join(format_value(v) for v in p.value)}]")
        if ranges:
            parts.append(_range_name(feature, ranges))
    return " & ".join(parts)
