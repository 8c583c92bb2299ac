"""The model interface every adapter implements, and the predictions it returns."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.spec_types import ModelSpec

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
    #: Per example token counts (int arrays) where the model reports them (generation).
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    #: Per example ``stop`` | ``length`` (generation), as the model or server said.
    finish_reasons: tuple[str, ...] | None = None
    #: Per example request latency in seconds (endpoint models), for the economics section.
    latency_s: np.ndarray | None = None
    #: What served the answers (``type: openai``): {"model": …, "system_fingerprint": …}.
    served: dict[str, Any] | None = None
    #: Per example, True where the answer was read from a cache rather than computed (or
    #: requested) by this run; None when unknown (all computed).
    cached: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray | Sequence[int]) -> Predictions:
        """The predictions of the examples at ``index``, in that order."""
        idx = [int(i) for i in index]

        def rows(a: np.ndarray | None) -> np.ndarray | None:
            return a[idx] if a is not None else None

        def items(t: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return tuple(t[i] for i in idx) if t is not None else None

        return Predictions(
            ids=tuple(self.ids[i] for i in idx), labels=items(self.labels),
            scores=rows(self.scores), outputs=items(self.outputs),
            input_tokens=rows(self.input_tokens), output_tokens=rows(self.output_tokens),
            finish_reasons=items(self.finish_reasons), latency_s=rows(self.latency_s),
            served=self.served, cached=rows(self.cached),
        )

    def usage(self) -> dict[str, int] | None:
        """Token totals over every answer behind these predictions, where the model reported
        them; ``requests``: answers this run asked for (or computed), ``cached``: answers read
        from a cache."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        cached = int(np.count_nonzero(self.cached)) if self.cached is not None else 0
        out = {"requests": len(self.ids) - cached, "cached": cached}
        if self.input_tokens is not None:
            out["input_tokens"] = int(np.asarray(self.input_tokens).sum())
        if self.output_tokens is not None:
            out["output_tokens"] = int(np.asarray(self.output_tokens).sum())
        return out


@dataclass(frozen=True)
class ModelFacts:
    """What a model costs to keep: parameter count and bytes of its files on disk."""

    params: int | None = None
    bytes: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Model(abc.ABC):
    """A teacher or student the harness can run.

    Adapters are built from a :class:`~harness.spec_types.ModelSpec` by
    :func:`harness.models.load_model`. They must be cheap to construct: heavy loading
    (weights, tokenizers) happens on the first :meth:`predict`, so that a run whose outputs
    are all cached never loads the model.
    """

    #: Capabilities the runner asks about (it never tests ``spec.type``).
    #: ``timeable``: latency can be measured by calling :meth:`predict` on subsets.
    timeable: bool = True
    #: ``counts_params``: :meth:`facts` knows the parameter count from the weights themselves.
    counts_params: bool = False
    #: ``reports_usage``: predictions carry token counts (generation, endpoints).
    reports_usage: bool = False
    #: ``request_latency``: predictions carry per-request latency (endpoint models).
    request_latency: bool = False
    #: ``answers_per_example``: the model keeps its raw answers in its own per-example store
    #: (:class:`harness.cache.AnswerStore`) and decodes them on every run.
    answers_per_example: bool = False
    #: ``precomputed``: the answers are read from a file; predicting runs no model.
    precomputed: bool = False

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

    def validate(self, data: Dataset, labels: Sequence[str]) -> None:  # noqa: B027
        """Check, cheaply and before any model runs, what can be checked (collection time).

        A predictions file is read and held to the contract here, so a bad file is a
        collection error; an adapter that must run a model to know checks nothing.
        """

    def facts(self) -> ModelFacts:
        """Parameter count and bytes on disk, where they can be known."""
        return ModelFacts()

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Sentence embeddings of ``texts`` (one row each), or None if the model has none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release whatever the model holds (weights, devices)."""
