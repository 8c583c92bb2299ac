"""A suite's ``economics:`` section, validated: serving prices and how latency is measured.

:func:`parse_economics` needs nothing but the section itself, so the spec loader calls it when
the suite loads and a bad section fails before any model runs. The JSON Schema of the same
section is the ``economics`` property of ``harness/schemas/suite.schema.json``; both accept
the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.economics._fields import Source, fraction, integer, non_negative, unknown_key
from harness.errors import SpecError

ROLES = ("teacher", "student")
ECONOMICS_KEYS = ("usd_per_hour", "batch_sizes", "sample", "warmup", "repeats", "threads",
                  "latency")
LATENCY_KEYS = ("min_repeats", "max_repeats", "target_half_width")

#: Timed repeats per batch size before the stopping rule is first consulted.
DEFAULT_MIN_REPEATS = 5
#: Timed repeats per batch size after which the measurement stops whatever its CI.
DEFAULT_MAX_REPEATS = 20
#: Stop once the latency ratio's CI half-width is at most this fraction of the ratio.
DEFAULT_TARGET_HALF_WIDTH = 0.10


@dataclass(frozen=True)
class EconomicsSettings:
    """A validated ``economics:`` section of a suite.

    Prices are USD per hour of the machine each model is served on (None: unknown, so no
    cost metrics); the rest are the settings of
    :func:`~harness.economics.latency.measure_latency`: ``repeats`` is the minimum number of
    timed repeats per batch size, ``max_repeats`` the maximum, and the measurement stops in
    between once the ratio's CI half-width is at most ``target_half_width`` × the ratio.
    """

    teacher_usd_per_hour: float | None = None
    student_usd_per_hour: float | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    sample: int = 64
    warmup: int = 2
    repeats: int = DEFAULT_MIN_REPEATS
    threads: int | None = None
    max_repeats: int = DEFAULT_MAX_REPEATS
    target_half_width: float = DEFAULT_TARGET_HALF_WIDTH

    def latency_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``measure_latency`` / ``measure_latencies`` these fix."""
        return {
            "batch_sizes": self.batch_sizes,
            "sample": self.sample,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "max_repeats": self.max_repeats,
            "target_half_width": self.target_half_width,
            "threads": self.threads,
        }


def _price(value: Any, source: Source, where: str) -> float:
    return non_negative(value, source, where, "USD per hour")


def _prices(raw: Any, source: Source) -> tuple[float | None, float | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping):
        one = _price(raw, source, "economics.usd_per_hour")
        return one, one
    for role in raw:
        if role not in ROLES:
            raise unknown_key(str(role), ROLES, source, "economics.usd_per_hour")
    found = [
        None if raw.get(role) is None else _price(raw[role], source, f"economics.usd_per_hour.{role}")
        for role in ROLES
    ]
    return found[0], found[1]


def _batch_sizes(raw: Any, source: Source) -> tuple[int, ...]:
    sizes = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or not sizes:
        raise SpecError(
            f"expected a non-empty list of positive integers, got {raw!r}",
            file=source,
            field="economics.batch_sizes",
        )
    out = tuple(integer(b, 1, source, f"economics.batch_sizes[{i}]") for i, b in enumerate(sizes))
    if len(set(out)) != len(out):
        raise SpecError(
            f"batch sizes must be distinct, got {list(out)}",
            file=source,
            field="economics.batch_sizes",
        )
    return out


def _latency(raw: Mapping[str, Any], source: Source) -> tuple[int, int, float]:
    """(min repeats, max repeats, target half-width) from ``repeats`` and ``latency:``."""
    block = raw.get("latency", {})
    if not isinstance(block, Mapping):
        raise SpecError(
            f"expected a mapping with any of {', '.join(LATENCY_KEYS)}, got {block!r}",
            file=source,
            field="economics.latency",
        )
    for key in block:
        if key not in LATENCY_KEYS:
            raise unknown_key(str(key), LATENCY_KEYS, source, "economics.latency")
    minimum = DEFAULT_MIN_REPEATS
    if "repeats" in raw:
        minimum = integer(raw["repeats"], 1, source, "economics.repeats")
    if "min_repeats" in block:
        given = integer(block["min_repeats"], 1, source, "economics.latency.min_repeats")
        if "repeats" in raw and given != minimum:
            # Both name the same setting; two different values leave the intent unclear.
            raise SpecError(
                f"economics.repeats is {minimum} and economics.latency.min_repeats is {given}; "
                "they are the same setting: give one of them",
                file=source,
                field="economics.latency.min_repeats",
            )
        minimum = given
    maximum = max(DEFAULT_MAX_REPEATS, minimum)
    if "max_repeats" in block:
        maximum = integer(block["max_repeats"], 1, source, "economics.latency.max_repeats")
        if maximum < minimum:
            raise SpecError(
                f"expected an integer >= the minimum number of repeats ({minimum}), "
                f"got {maximum}",
                file=source,
                field="economics.latency.max_repeats",
            )
    target = DEFAULT_TARGET_HALF_WIDTH
    if "target_half_width" in block:
        target = fraction(block["target_half_width"], source, "economics.latency.target_half_width")
    return minimum, maximum, target


def parse_economics(raw: Mapping[str, Any] | None, source: Source = None) -> EconomicsSettings:
    """Validate a suite's ``economics:`` section; callable when the suite loads.

    ``usd_per_hour`` is one price for both models or a mapping ``{teacher: …, student: …}``
    (a missing role has no price); ``batch_sizes`` a positive integer or a non-empty list of
    distinct positive integers; ``sample`` a positive integer, ``warmup`` an integer >= 0,
    ``threads`` a positive integer or null. Latency repeats: ``repeats`` (or
    ``latency.min_repeats``, the same setting) is the minimum per batch size,
    ``latency.max_repeats`` the maximum (default ``max(20, minimum)``) and
    ``latency.target_half_width`` (default 0.10) the CI half-width, as a fraction of the
    ratio, at which the measurement stops. Raises :class:`~harness.errors.SpecError` naming
    ``source`` and the field (e.g. ``economics.usd_per_hour.student``).
    """
    if raw is None:
        return EconomicsSettings()
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"expected a mapping, got {type(raw).__name__}", file=source, field="economics"
        )
    for key in raw:
        if key not in ECONOMICS_KEYS:
            raise unknown_key(str(key), ECONOMICS_KEYS, source, "economics")
    defaults = EconomicsSettings()
    teacher_price, student_price = _prices(raw.get("usd_per_hour"), source)
    threads_raw = raw.get("threads")
    minimum, maximum, target = _latency(raw, source)
    return EconomicsSettings(
        teacher_usd_per_hour=teacher_price,
        student_usd_per_hour=student_price,
        batch_sizes=_batch_sizes(raw.get("batch_sizes", list(defaults.batch_sizes)), source),
        sample=integer(raw.get("sample", defaults.sample), 1, source, "economics.sample"),
        warmup=integer(raw.get("warmup", defaults.warmup), 0, source, "economics.warmup"),
        repeats=minimum,
        threads=None if threads_raw is None else integer(threads_raw, 1, source, "economics.threads"),
        max_repeats=maximum,
        target_half_width=target,
    )
