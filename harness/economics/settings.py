"""The economic settings of a suite, validated when it loads: the ``economics:`` section
(serving prices and how latency is measured), each model's ``metadata.training`` and its
``metadata.usd_per_million_tokens``.

Each parser needs nothing but the value itself, so the spec loader calls them when the suite
loads and a bad value fails before any model runs; they return the frozen types of
:mod:`harness.spec_types`. The JSON Schema of the same section is the ``economics`` property
of ``harness/schemas/suite.schema.json``; both accept the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.economics._fields import Source, fraction, integer, non_negative, unknown_key
from harness.errors import SpecError
from harness.spec_types import (
    DEFAULT_MAX_REPEATS,
    DEFAULT_MIN_REPEATS,
    DEFAULT_TARGET_HALF_WIDTH,
    EconomicsSettings,
    TokenPrices,
    TrainingFacts,
)

ROLES = ("teacher", "student")
ECONOMICS_KEYS = ("usd_per_hour", "batch_sizes", "sample", "warmup", "repeats", "threads",
                  "latency")
LATENCY_KEYS = ("min_repeats", "max_repeats", "target_half_width")

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


TRAINING_KEYS = ("gpu_hours", "usd", "examples")


def parse_training(
    raw: Mapping[str, Any] | None,
    source: Source = None,
    where: str = "student.metadata.training",
) -> TrainingFacts:
    """Validate a model spec's ``metadata.training`` (``gpu_hours``, ``usd``, ``examples``).

    Numbers must be >= 0 (``examples`` an integer); an unknown key is a
    :class:`~harness.errors.SpecError` (a typo would silently switch a gate off).
    """
    if raw is None:
        return TrainingFacts()
    if not isinstance(raw, Mapping):
        raise SpecError(f"expected a mapping, got {type(raw).__name__}", file=source, field=where)
    for key in raw:
        if key not in TRAINING_KEYS:
            raise unknown_key(str(key), TRAINING_KEYS, source, where)

    def number(key: str) -> float | None:
        value = raw.get(key)
        return None if value is None else non_negative(value, source, f"{where}.{key}")

    examples = raw.get("examples")
    return TrainingFacts(
        gpu_hours=number("gpu_hours"),
        usd=number("usd"),
        examples=None if examples is None else integer(examples, 0, source, f"{where}.examples"),
    )


def parse_token_prices(raw: Any, source: Source = None,
                       where: str = "metadata.usd_per_million_tokens") -> TokenPrices | None:
    """A model's ``metadata.usd_per_million_tokens`` (``{input, output}``, USD per million
    tokens; a missing one costs 0), or None when the model is not priced by the token."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw or not set(raw) <= {"input", "output"}:
        raise SpecError("expected {input: USD, output: USD} per million tokens", file=source,
                        field=where)
    return TokenPrices(input=non_negative(raw.get("input", 0.0), source, f"{where}.input"),
                       output=non_negative(raw.get("output", 0.0), source, f"{where}.output"))
