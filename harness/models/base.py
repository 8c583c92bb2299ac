"""The model interface every adapter implements, and the predictions it returns."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.spec import ModelSpec

#: Called by adapters as work advances: (examples done, examples in total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Predictions:
    """One model's outputs over a data set, in the data set's example order.

    ``scores`` has one row per example and one column per suite label (in the suite's
    ``labels`` order); rows are probabilities.
    """

    ids: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    scores: np.ndarray | None = None
    outputs: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray | Sequence[int]) -> Predictions:
        """The predictions of the examples at ``index``, in that order."""
        idx = [int(i) for i in index]
        return Predictions(
            ids=tuple(self.ids[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx) if self.labels is not None else None,
            scores=self.scores[idx] if self.scores is not None else None,
            outputs=tuple(self.outputs[i] for i in idx) if self.outputs is not None else None,
        )


@dataclass(frozen=True)
class ModelFacts:
    """What a model costs to keep: parameter count and bytes of its files on disk."""

    params: int | None = None
    bytes: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Model(abc.ABC):
    """A teacher or student the harness can run.

    Adapters are built from a :class:`~harness.spec.ModelSpec` by
    :func:`harness.models.load_model`. They must be cheap to construct: heavy loading
    (weights, tokenizers) happens on the first :meth:`predict`, so that a run whose outputs
    are all cached never loads the model.
    """

    def __init__(self, spec: ModelSpec, role: str):
        self.spec = spec
        self.role = role

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A hash of everything that determines this model's outputs (hex sha256)."""

    @abc.abstractmethod
    def predict(
        self, data: Dataset, labels: Sequence[str], progress: Progress | None = None
    ) -> Predictions:
        """Run the model over every example of ``data``; outputs in ``data``'s order."""

    def facts(self) -> ModelFacts:
        """Parameter count and bytes on disk, where they can be known."""
        return ModelFacts()

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Sentence embeddings of ``texts`` (one row each), or None if the model has none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release whatever the model holds (weights, devices)."""
