"""The typed outputs of a model over a suite, and what metrics are computed from.

A leaf of the package: it imports nothing of the harness, so the tasks, the metrics, the gate
and every step can share these types without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: A classification answer that matches no label (an endpoint's free text): label code -1.
INVALID = -1
#: How a predictions file or an endpoint spells an answer that matched no label.
INVALID_LABEL = "<invalid>"


@dataclass(frozen=True)
class Outputs:
    """One model's outputs over the suite, aligned by example; build the typed ones below.

    ``labels``: int codes in the suite's label order (:data:`INVALID` for an answer matching
    no label); ``scores``: (n, n_labels) probabilities; ``texts``: generated outputs;
    ``input_tokens`` / ``output_tokens`` / ``finish_reasons`` where the model reports them.
    """

    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    texts: tuple[str, ...] | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    finish_reasons: tuple[str, ...] | None = None
    #: Per judge of the suite, these outputs' per-example values of ``judge:<name>`` (NaN where
    #: the judgment was invalid); filled by the judges step after the models ran.
    judged: Mapping[str, np.ndarray] | None = None

    def __len__(self) -> int:
        if self.labels is not None:
            return len(self.labels)
        return len(self.texts or ())


@dataclass(frozen=True)
class LabelOutputs(Outputs):
    """A classifier's outputs: label codes (always), scores (optional).

    A code of :data:`INVALID` (-1) is an answer that matched no label: wrong for every
    correctness metric and counted in ``invalid_rate``.
    """

    def __post_init__(self) -> None:
        if self.labels is None or self.texts is not None:
            raise TypeError("LabelOutputs holds label codes (and optional scores), not texts")


@dataclass(frozen=True)
class TextOutputs(Outputs):
    """A language model's outputs: one text each (always), with usage where known."""

    def __post_init__(self) -> None:
        if self.texts is None or self.labels is not None or self.scores is not None:
            raise TypeError("TextOutputs holds texts, not label codes or scores")


@dataclass(frozen=True)
class EvalContext:
    """What metrics are computed from: gold labels or references and the teacher's outputs."""

    labels: tuple[str, ...]
    gold: np.ndarray | None  # int codes, or None when the suite has no gold labels
    teacher: Outputs
    references: tuple[tuple[str, ...], ...] | None = None  # generation references

    @property
    def has_gold(self) -> bool:
        return self.gold is not None or self.references is not None
