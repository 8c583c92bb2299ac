"""Evaluation data: loading JSONL / JSON / CSV, fingerprints, and declared slices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Examples in file order.

    ``inputs`` holds one string per example, or a dict of fields when the spec names several
    input fields. ``features`` maps each feature name to a column (``numpy`` object array for
    categorical values, float array for numeric ones). ``records`` are the raw rows.
    """

    path: Path
    sha256: str
    ids: tuple[str, ...]
    inputs: tuple[Any, ...]
    labels: tuple[str, ...] | None
    features: dict[str, np.ndarray] = field(default_factory=dict)
    records: tuple[dict[str, Any], ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """Each input as one string (several input fields joined by a newline)."""
        return [x if isinstance(x, str) else "\n".join(str(v) for v in x.values()) for x in self.inputs]

    def subset(self, index: np.ndarray | Sequence[int]) -> Dataset:
        """The examples at ``index``, in that order (same path and sha256)."""
        idx = [int(i) for i in index]
        return Dataset(
            path=self.path,
            sha256=self.sha256,
            ids=tuple(self.ids[i] for i in idx),
            inputs=tuple(self.inputs[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx) if self.labels is not None else None,
            features={k: v[idx] for k, v in self.features.items()},
            records=tuple(self.records[i] for i in idx) if self.records else (),
        )
