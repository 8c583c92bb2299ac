"""Model adapters, registered by ``type`` with lazy factories (one module each).

Importing this package imports no adapter: a factory names the module and class it builds,
and the module is imported only when a suite names that type. Only the transformers adapters
import torch / transformers, and only ``openai_compat`` imports ``openai``.

An adapter declares what it can do (:attr:`Model.timeable`, :attr:`Model.counts_params`,
:attr:`Model.reports_usage`, :attr:`Model.request_latency`); the runner asks, it never tests
``spec.type``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from harness.models.base import Model, ModelFacts, Predictions, Progress
from harness.options import Options
from harness.spec_types import ModelSpec

__all__ = ["Model", "ModelFacts", "Predictions", "Progress", "load_model", "register_model_type",
           "model_types"]

#: A factory builds the adapter of one model spec: (spec, role, options) -> Model.
Factory = Callable[[ModelSpec, str, Options], Model]


@dataclass(frozen=True)
class _Lazy:
    """``module:function`` of a factory, imported on first use."""

    target: str

    def __call__(self, spec: ModelSpec, role: str, options: Options) -> Model:
        module, _, name = self.target.partition(":")
        factory: Factory = getattr(importlib.import_module(module), name)
        return factory(spec, role, options)


_TYPES: dict[str, Factory] = {}


def register_model_type(name: str, factory: Factory | str) -> None:
    """Register the adapter of ``type: name``; ``factory`` may be ``"module:function"`` (lazy)."""
    if name in _TYPES:
        raise ValueError(f"model type {name!r} is already registered")
    _TYPES[name] = _Lazy(factory) if isinstance(factory, str) else factory


def model_types() -> list[str]:
    """The registered ``type:`` names."""
    return sorted(_TYPES)


register_model_type("predictions", "harness.models.predictions:build")
register_model_type("callable", "harness.models.callable:build")
register_model_type("transformers", "harness.models.transformers:build")
register_model_type("openai", "harness.models.openai_compat:build")


def load_model(spec: ModelSpec, role: str, options: Options | None = None) -> Model:
    """Build the adapter for ``spec`` (cheap: weights load on first use)."""
    factory = _TYPES.get(spec.type)
    if factory is None:
        from harness.errors import SpecError

        raise SpecError(f"unknown model type {spec.type!r}; known: {', '.join(model_types())}",
                        file=spec.source, field=f"{spec.field}.type")
    return factory(spec, role, options or Options())
