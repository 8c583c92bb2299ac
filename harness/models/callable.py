"""``type: callable`` — a Python function ``package.module:function`` as a model."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data import Dataset
from harness.errors import ModelError
from harness.models.base import Model, Predictions, Progress
from harness.models.predictions import score_row

if TYPE_CHECKING:
    from harness.options import Options
    from harness.spec_types import ModelSpec


class CallableModel(Model):
    """Calls ``target`` with a list of example dicts; it returns predictions in the same order.

    A prediction is a label string, or a dict like a predictions-file line (``label``,
    optional ``scores``; ``output`` for generation). The fingerprint hashes the function's
    source, so editing the function invalidates cached outputs.
    """

    def __init__(self, spec: Any, role: str):
        super().__init__(spec, role)
        self._fn: Callable[[list[dict[str, Any]]], Sequence[Any]] | None = None

    def _where(self) -> tuple[str, str]:
        from harness.paths import display_path

        return display_path(self.spec.source), f"{self.spec.field}.target"

    def function(self) -> Callable[[list[dict[str, Any]]], Sequence[Any]]:
        if self._fn is None:
            file, field = self._where()
            module_name, _, attr = str(self.spec.target).partition(":")
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # ImportError, or the module's own error (SyntaxError, …)
                raise ModelError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}",
                                 file=file, field=field) from None
            fn: Any = module
            for part in attr.split("."):
                fn = getattr(fn, part, None)
                if fn is None:
                    raise ModelError(f"{module_name!r} has no attribute {attr!r}", file=file,
                                     field=field)
            if not callable(fn):
                raise ModelError(f"{self.spec.target!r} is not callable", file=file, field=field)
            self._fn = fn
        return self._fn

    def fingerprint(self) -> str:
        fn = self.function()
        h = hashlib.sha256(b"callable\0")
        h.update(str(self.spec.target).encode())
        try:
            h.update(inspect.getsource(fn).encode())
        except (OSError, TypeError):
            h.update(repr(fn).encode())
        return h.hexdigest()

    def predict(self, data: Dataset, labels: Sequence[str],
                progress: Progress | None = None) -> Predictions:
        file, field = self._where()
        examples = [dict(r) for r in data.records] if data.records else [
            {"id": i, "input": x} for i, x in zip(data.ids, data.inputs, strict=True)]
        for ex, ex_id, inp in zip(examples, data.ids, data.inputs, strict=True):
            ex.setdefault("id", ex_id)
            ex["input"] = inp
        try:
            result = list(self.function()(examples))
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{self.spec.target} raised {type(exc).__name__}: {exc}", file=file,
                             field=field) from exc
        if len(result) != len(examples):
            raise ModelError(f"{self.spec.target} returned {len(result)} predictions for "
                             f"{len(examples)} examples", file=file, field=field)
        if progress:
            progress(len(data), len(data))
        if not labels:
            return Predictions(ids=data.ids, outputs=tuple(
                str(r["output"] if isinstance(r, dict) else r) for r in result))
        label_list = list(labels)
        out_labels: list[str] = []
        scores = np.zeros((len(result), len(label_list)))
        with_scores = all(isinstance(r, dict) and r.get("scores") is not None for r in result)
        for i, r in enumerate(result):
            label = r.get("label") if isinstance(r, dict) else r
            if label not in label_list:
                raise ModelError(f"prediction {i} (id {data.ids[i]!r}): label {label!r} is not one "
                                 f"of {', '.join(label_list)}", file=file, field=field)
            out_labels.append(str(label))
            if with_scores:
                try:
                    scores[i] = score_row(r["scores"], label_list)
                except ValueError as exc:
                    raise ModelError(f"prediction {i} (id {data.ids[i]!r}): {exc}", file=file,
                                     field=field) from None
        return Predictions(ids=data.ids, labels=tuple(out_labels),
                           scores=scores if with_scores else None)


def build(spec: ModelSpec, role: str, options: Options) -> Model:
    """The ``type: callable`` factory."""
    return CallableModel(spec, role)
