"""Sequence-classification models from a local folder or the Hugging Face hub, and the
``type: transformers`` factory (a classifier, or a generator for generation suites).

The files, fingerprint, device, loading and embeddings are :class:`~harness.models._hf.HFModel`'s;
this module adds the classification head, the label matching and the softmax scores. torch is
imported inside methods only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelError
from harness.models._hf import HFModel
from harness.models.base import Model, Predictions, Progress

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.options import Options
    from harness.spec_types import ModelSpec

_GENERIC_LABEL = re.compile(r"LABEL_\d+")


def match_labels(model_labels: Sequence[str], suite_labels: Sequence[str]) -> tuple[list[int], str]:
    """For each suite label, the index of the model output it is; and how they were matched.

    Names match case-insensitively and exactly ("names"). A model whose labels are all
    generic (``LABEL_0``, ``LABEL_1``, ...) maps by position ("positional") when it has as many
    outputs as the suite has labels. Anything else is a :class:`ModelError` listing both sets.
    """
    by_name: dict[str, int] = {}
    for i, name in enumerate(model_labels):
        by_name.setdefault(str(name).lower(), i)
    if len(model_labels) == len(suite_labels) and len(by_name) == len(model_labels):
        index = [by_name.get(str(lab).lower()) for lab in suite_labels]
        if all(i is not None for i in index) and len(set(index)) == len(index):
            return [int(i) for i in index if i is not None], "names"
    generic = all(_GENERIC_LABEL.fullmatch(str(name)) for name in model_labels)
    if generic and len(model_labels) == len(suite_labels):
        return list(range(len(suite_labels))), "positional"
    hint = (
        " The model's labels are generic (LABEL_n); they map by position only when the suite"
        " has as many labels as the model has outputs."
        if generic
        else " Rename the suite's labels to the model's (case does not matter), or set"
        " id2label in the model's config.json."
    )
    raise ModelError(
        f"cannot match the model's labels {list(model_labels)} to the suite's labels"
        f" {list(suite_labels)}.{hint}"
    )


class TransformersModel(HFModel):
    """A ``type: transformers`` classifier: ``AutoModelForSequenceClassification`` plus its
    tokenizer; scores are the softmax over the suite's labels."""

    def model_labels(self) -> list[str]:
        """The model's output names in output order, from config.json's ``id2label``."""
        path = self.folder() / "config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise self._error(f"cannot read {path}: {exc}") from None
        id2label = config.get("id2label")
        if not id2label:
            n = int(config.get("num_labels", 2))
            return [f"LABEL_{i}" for i in range(n)]
        return [str(id2label[k]) for k in sorted(id2label, key=int)]

    def _auto_class(self, transformers: Any, config: Any) -> Any:
        return transformers.AutoModelForSequenceClassification

    def predict(self, data: Dataset, labels: Sequence[str], progress: Progress | None = None) -> Predictions:
        """Softmax probabilities over ``labels`` (suite order) and the argmax label per example."""
        if not labels:
            raise self._error("a transformers model needs the suite's labels", "labels")
        index, how = match_labels(self.model_labels(), labels)
        self._label_mapping = how
        self._load()
        texts = data.texts()
        scores = np.zeros((len(texts), len(labels)), dtype=np.float64)
        for pos, _mask, out in self._batches(texts, progress):
            logits = out.logits.float().cpu().numpy().astype(np.float64)
            logits = logits[:, index]
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            scores[pos] = probs
        names = tuple(labels)
        predicted = tuple(names[int(j)] for j in scores.argmax(axis=1)) if len(texts) else ()
        return Predictions(ids=tuple(data.ids), labels=predicted, scores=scores)


def build(spec: ModelSpec, role: str, options: Options) -> Model:
    """The ``type: transformers`` factory: a classifier, or a generator for generation suites."""
    _require_extra(spec)
    if spec.task == "generation":
        from harness.models.transformers_generation import GenerationModel

        return GenerationModel(spec, role, allow_remote_code=options.allow_remote_code,
                               device_override=options.device, flag_prefix=options.flag_prefix)
    return TransformersModel(spec, role, allow_remote_code=options.allow_remote_code,
                             device_override=options.device, flag_prefix=options.flag_prefix)


def _require_extra(spec: ModelSpec) -> None:
    """A clear one-line error when torch or transformers is not installed (no import: cheap)."""
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        from harness.paths import display_path

        raise ModelError(f"type: transformers needs {' and '.join(missing)}, which are not "
                         "installed; install the extra: pip install 'distill-harness[transformers]'",
                         file=display_path(spec.source), field=f"{spec.field}.type")
