"""Model adapters: ``predictions`` files, Python ``callable``s and ``transformers`` models.

Only :mod:`harness.models.transformers` imports torch / transformers, and only when a suite
names a transformers model.
"""

from __future__ import annotations

from harness.models.base import Model, ModelFacts, Predictions, Progress
from harness.options import Options
from harness.spec_types import ModelSpec

__all__ = ["Model", "ModelFacts", "Predictions", "Progress", "load_model"]


def load_model(spec: ModelSpec, role: str, options: Options | None = None) -> Model:
    """Build the adapter for ``spec`` (cheap: weights load on first use)."""
    options = options or Options()
    if spec.type == "predictions":
        from harness.models.predictions import PredictionsModel

        return PredictionsModel(spec, role)
    if spec.type == "callable":
        from harness.models.callable import CallableModel

        return CallableModel(spec, role)
    if spec.type == "transformers":
        from harness.models.transformers import TransformersModel

        return TransformersModel(spec, role, allow_remote_code=options.allow_remote_code,
                                 device_override=options.device)
    from harness.errors import SpecError

    raise SpecError(f"unknown model type {spec.type!r}", file=spec.source, field=f"{spec.field}.type")
