"""The metric registry.

Every metric declares its direction and how it is computed. Three kinds:

- ``example``: a float per example (``per_example_fn``), aggregated by the mean — accuracy,
  agreement, flip rates, KL divergence. Paired tests and pocket discovery work on these.
- ``aggregate``: computed from the outputs of a set of examples (``aggregate_fn``) — macro F1,
  ECE, Hugging Face ``evaluate`` modules. Tested with a paired bootstrap.
- ``suite``: a figure of the whole run, computed elsewhere (economics, coverage) — gated on the
  point value.

``get_metric`` raises :class:`~harness.errors.SpecError` for an unknown name, listing the
known ones with a did-you-mean.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SpecError


@dataclass(frozen=True)
class Outputs:
    """One model's outputs over the suite, encoded: label codes (suite label order), scores."""

    labels: np.ndarray | None  # int codes, one per example
    scores: np.ndarray | None = None  # (n, n_labels) probabilities
    texts: tuple[str, ...] | None = None  # generation outputs


@dataclass(frozen=True)
class EvalContext:
    """What metrics are computed from: gold labels and each model's outputs, aligned by example."""

    labels: tuple[str, ...]
    gold: np.ndarray | None  # int codes, or None when the suite has no gold labels
    teacher: Outputs
    references: tuple[str, ...] | None = None  # generation references


PerExample = Callable[[EvalContext, Outputs], np.ndarray]
Aggregate = Callable[[EvalContext, Outputs, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    kind: str  # "example" | "aggregate" | "suite"
    description: str
    binary: bool = False
    needs_gold: bool = False
    needs_scores: bool = False
    per_example_fn: PerExample | None = None
    aggregate_fn: Aggregate | None = None

    def per_example(self, ctx: EvalContext, out: Outputs) -> np.ndarray:
        """A float per example (only for ``example`` metrics)."""
        if self.per_example_fn is None:
            raise ValueError(f"metric {self.name!r} has no per-example values")
        self._check_inputs(ctx, out)
        return np.asarray(self.per_example_fn(ctx, out), dtype=float)

    def value(self, ctx: EvalContext, out: Outputs, index: np.ndarray) -> float:
        """The metric over the examples at ``index``."""
        self._check_inputs(ctx, out)
        if self.per_example_fn is not None:
            vals = self.per_example(ctx, out)[index]
            return float(vals.mean()) if len(vals) else float("nan")
        assert self.aggregate_fn is not None
        return float(self.aggregate_fn(ctx, out, index))

    def _check_inputs(self, ctx: EvalContext, out: Outputs) -> None:
        if self.needs_gold and ctx.gold is None and ctx.references is None:
            raise SpecError(f"metric {self.name!r} needs gold labels; the suite's data names no "
                            "label field")
        if self.needs_scores and (out.scores is None or ctx.teacher.scores is None):
            raise SpecError(f"metric {self.name!r} needs scores from both models; the "
                            "predictions carry labels only")


_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the registry (a name may be registered once)."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def known_metrics() -> list[str]:
    return sorted(_REGISTRY)


def get_metric(name: str, *, local_module: Path | None = None) -> Metric:
    """The metric called ``name``; ``evaluate:<module>`` loads a Hugging Face evaluate module.

    ``local_module`` is the resolved file or folder of an ``evaluate:<path>`` metric (the rubric
    loader resolves it against the rubric file and the repository root).
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("evaluate:"):
        return _evaluate_metric(name, local_module)
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpecError(f"unknown metric {name!r}{hint}; known metrics: {', '.join(known_metrics())}, "
                    "or evaluate:<module>")


# --------------------------------------------------------------------------- built-ins

def _correct(ctx: EvalContext, out: Outputs) -> np.ndarray:
    if ctx.gold is None:
        raise SpecError("this metric needs gold labels; the suite's data names no label field")
    return np.asarray(out.labels == ctx.gold, dtype=float)


def _agreement(ctx: EvalContext, out: Outputs) -> np.ndarray:
    return np.asarray(out.labels == ctx.teacher.labels, dtype=float)


def _negative_flip(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_right = ctx.teacher.labels == ctx.gold
    return np.asarray(teacher_right & (out.labels != ctx.gold), dtype=float)


def _positive_flip(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_wrong = ctx.teacher.labels != ctx.gold
    return np.asarray(teacher_wrong & (out.labels == ctx.gold), dtype=float)


def _inherited_error(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_wrong = ctx.teacher.labels != ctx.gold
    return np.asarray(teacher_wrong & (out.labels == ctx.teacher.labels), dtype=float)


def _kl(ctx: EvalContext, out: Outputs) -> np.ndarray:
    from scipy.special import rel_entr

    assert out.scores is not None and ctx.teacher.scores is not None
    eps = 1e-12
    p = np.clip(ctx.teacher.scores, eps, 1.0)
    q = np.clip(out.scores, eps, 1.0)
    return np.asarray(rel_entr(p, q).sum(axis=1), dtype=float)


def _macro_f1(ctx: EvalContext, out: Outputs, index: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    assert ctx.gold is not None and out.labels is not None
    return float(f1_score(ctx.gold[index], out.labels[index], average="macro",
                          labels=list(range(len(ctx.labels))), zero_division=0))


def _ece(ctx: EvalContext, out: Outputs, index: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of the top label, equal-width confidence bins."""
    assert ctx.gold is not None and out.scores is not None and out.labels is not None
    if len(index) == 0:
        return float("nan")
    conf = out.scores[index].max(axis=1)
    correct = (out.labels[index] == ctx.gold[index]).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            total += sel.sum() / len(index) * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def _exact_match(ctx: EvalContext, out: Outputs) -> np.ndarray:
    if ctx.references is None or out.texts is None:
        raise SpecError("exact_match needs generation outputs and references")
    return np.array([float(a.strip() == b.strip()) for a, b in zip(out.texts, ctx.references,
                                                                     strict=True)])


register(Metric("accuracy", True, "example", "share of examples whose label is the gold label",
                binary=True, needs_gold=True, per_example_fn=_correct))
register(Metric("agreement", True, "example", "share of examples where the label equals the "
                "teacher's", binary=True, per_example_fn=_agreement))
register(Metric("negative_flip_rate", False, "example", "share of examples the teacher gets right "
                "and the model gets wrong", binary=True, needs_gold=True,
                per_example_fn=_negative_flip))
register(Metric("positive_flip_rate", True, "example", "share of examples the teacher gets wrong "
                "and the model gets right", binary=True, needs_gold=True,
                per_example_fn=_positive_flip))
register(Metric("inherited_error_rate", False, "example", "share of examples where the model "
                "gives the teacher's wrong label", binary=True, needs_gold=True,
                per_example_fn=_inherited_error))
register(Metric("kl_divergence", False, "example", "KL(teacher || model) of the label "
                "distributions, per example", needs_scores=True, per_example_fn=_kl))
register(Metric("macro_f1", True, "aggregate", "macro-averaged F1 over the suite's labels "
                "(scikit-learn)", needs_gold=True, aggregate_fn=_macro_f1))
register(Metric("ece", False, "aggregate", "expected calibration error (10 equal-width bins)",
                needs_gold=True, needs_scores=True, aggregate_fn=_ece))
register(Metric("exact_match", True, "example", "generation output equals the reference "
                "(whitespace-stripped)", binary=True, needs_gold=True,
                per_example_fn=_exact_match))

#: Run-level figures computed by economics.py and coverage.py; gated on the point value.
SUITE_METRICS = {
    "size_reduction": (True, "1 - student/teacher parameters"),
    "size_reduction_bytes": (True, "1 - student/teacher bytes on disk"),
    "latency_improvement": (True, "teacher p50 latency / student p50 latency"),
    "throughput_improvement": (True, "student throughput / teacher throughput"),
    "teacher_cost_per_million": (False, "USD per million teacher predictions"),
    "student_cost_per_million": (False, "USD per million student predictions"),
    "cost_reduction": (True, "1 - student/teacher cost per prediction"),
    "payback_predictions": (False, "predictions after which the training spend is repaid"),
    "quality_retained_per_gpu_hour": (True, "student/teacher quality per GPU-hour of training"),
    "uncovered_fraction": (False, "share of eval examples far from every distillation example"),
}
for _name, (_hib, _desc) in SUITE_METRICS.items():
    register(Metric(_name, _hib, "suite", _desc))


# --------------------------------------------------------------------------- evaluate modules

_EVALUATE_CACHE: dict[str, Metric] = {}


def _evaluate_metric(name: str, local_module: Path | None = None) -> Metric:
    """Wrap a Hugging Face ``evaluate`` module (hub name or local path) as an aggregate metric.

    The module is loaded once per process. Offline (``HF_EVALUATE_OFFLINE`` / ``HF_HUB_OFFLINE``)
    a hub name fails at once with a SpecError saying to use a local module path.
    """
    if name in _EVALUATE_CACHE:
        return _EVALUATE_CACHE[name]
    module_ref = name.split(":", 1)[1].strip()
    if not module_ref:
        raise SpecError("evaluate: needs a module name or a local module path")
    if local_module is None and Path(module_ref).is_absolute() and Path(module_ref).exists():
        local_module = Path(module_ref)
    is_local = local_module is not None
    if local_module is not None:
        module_ref = str(local_module)
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
                  for v in ("HF_EVALUATE_OFFLINE", "HF_HUB_OFFLINE"))
    if not is_local and offline:
        raise SpecError(f"evaluate module {module_ref!r} is not a local path and the hub is offline "
                        "(HF_EVALUATE_OFFLINE/HF_HUB_OFFLINE); point metric at a local module, e.g. "
                        "evaluate:path/to/accuracy.py")
    try:
        import evaluate  # optional extra
    except ImportError:
        raise SpecError(f"metric {name!r} needs the 'evaluate' package: pip install "
                        "'distill-harness[evaluate]'") from None
    try:
        module = evaluate.load(module_ref)
    except Exception as exc:  # evaluate raises many kinds; all mean "cannot load"
        raise SpecError(f"cannot load evaluate module {module_ref!r}: "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        ) from None
    key = Path(module_ref).stem if is_local else module_ref.rsplit("/", 1)[-1]

    def compute(ctx: EvalContext, out: Outputs, index: np.ndarray) -> float:
        if ctx.gold is not None and out.labels is not None:
            preds: Sequence[Any] = out.labels[index].tolist()
            refs: Sequence[Any] = ctx.gold[index].tolist()
        else:
            assert out.texts is not None and ctx.references is not None
            preds = [out.texts[i] for i in index]
            refs = [ctx.references[i] for i in index]
        result = module.compute(predictions=preds, references=refs)
        if not isinstance(result, dict) or not result:
            raise SpecError(f"evaluate module {module_ref!r} returned no score")
        value = result.get(key, next(iter(result.values())))
        return float(value)

    metric = Metric(name, True, "aggregate", f"Hugging Face evaluate module {module_ref}",
                    needs_gold=True, aggregate_fn=compute)
    _EVALUATE_CACHE[name] = metric
    return metric
