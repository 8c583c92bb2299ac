"""The metric registry: one place where every metric declares what it is.

Each metric is declared with keyword-only fields: its ``name``, the ``tasks`` it applies to,
its ``direction`` (``higher`` or ``lower`` is better), its ``kind`` and what it ``needs``:

- ``example``: a float per example (``per_example_fn``), aggregated by the mean — accuracy,
  agreement, flip rates, exact match, chrF, error rates. Paired tests (exact / Tango for 0/1
  values, paired BCa bootstrap otherwise) and pocket discovery work on these.
- ``corpus``: computed from the outputs of a set of examples (``aggregate_fn``) — macro F1, ECE,
  corpus BLEU and chrF, Hugging Face ``evaluate`` modules. Tested with a paired bootstrap over
  examples; BLEU and corpus chrF sum per-example sufficient statistics (``stats_fn``), so a
  resample costs a sum.
- ``suite``: a figure of the whole run, computed elsewhere (economics, coverage) — gated on the
  point value.

``needs`` names the inputs: ``gold`` (labels or references), ``scores`` (label probabilities),
``teacher`` (label-free fidelity), ``usage`` (token counts), ``finish`` (finish reasons).

``get_metric`` raises :class:`~harness.errors.SpecError` for an unknown name, listing the
known ones with a did-you-mean; :func:`check_applies` refuses a metric of the wrong task or one
the suite's data cannot feed, when the rubric loads.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.outputs import INVALID, EvalContext, Outputs

__all__ = ["Metric", "all_metrics", "check_applies", "get_metric", "known_metrics", "register"]

TASK_NAMES = ("classification", "generation")
BOTH = frozenset(TASK_NAMES)
CLS = frozenset({"classification"})
GEN = frozenset({"generation"})
KINDS = ("example", "corpus", "suite")
NEEDS = ("gold", "scores", "teacher", "usage", "finish")


PerExample = Callable[[EvalContext, Outputs], np.ndarray]
Aggregate = Callable[[EvalContext, Outputs, np.ndarray], float]
Stats = Callable[[EvalContext, Outputs], np.ndarray]
FromStats = Callable[[np.ndarray], float]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One metric, declared once: where it applies, which way is better, how it is computed."""

    name: str
    tasks: frozenset[str]
    direction: str  # "higher" | "lower"
    kind: str  # "example" | "corpus" | "suite"
    description: str
    needs: frozenset[str] = frozenset()
    binary: bool = False
    #: Per-example values are a pure function of the outputs, references and teacher outputs,
    #: and cost enough to keep between runs (text metrics; see harness.metric_store).
    stored: bool = False
    per_example_fn: PerExample | None = None
    aggregate_fn: Aggregate | None = None
    stats_fn: Stats | None = None  # per-example sufficient statistics of a corpus metric
    from_stats: FromStats | None = None  # the corpus value from summed statistics
    _memo: dict[int, tuple[Any, np.ndarray]] = field(default_factory=dict, repr=False,
                                                     compare=False)

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"metric {self.name!r}: direction must be higher or lower")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind must be one of {', '.join(KINDS)}")
        if not self.tasks <= BOTH or not self.tasks:
            raise ValueError(f"metric {self.name!r}: tasks must be among {', '.join(TASK_NAMES)}")
        unknown = self.needs - set(NEEDS)
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown needs {sorted(unknown)}")
        computed = {"example": self.per_example_fn is not None,
                    "corpus": self.aggregate_fn is not None or self.stats_fn is not None,
                    "suite": True}[self.kind]
        if not computed:
            raise ValueError(f"metric {self.name!r}: a {self.kind} metric needs its function")

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    @property
    def needs_gold(self) -> bool:
        return "gold" in self.needs

    @property
    def needs_scores(self) -> bool:
        return "scores" in self.needs

    def per_example(self, ctx: EvalContext, out: Outputs) -> np.ndarray:
        """A float per example (only for ``example`` metrics)."""
        if self.per_example_fn is None:
            raise ValueError(f"metric {self.name!r} has no per-example values")
        self._check_inputs(ctx, out)
        from harness.metric_store import stored_values

        fn = self.per_example_fn
        return stored_values(self, ctx, out, lambda: np.asarray(fn(ctx, out), dtype=float))

    def statistics(self, ctx: EvalContext, out: Outputs) -> np.ndarray:
        """Per-example sufficient statistics of a corpus metric, computed once per outputs."""
        assert self.stats_fn is not None
        hit = self._memo.get(id(out))
        if hit is not None and hit[0] is out:
            return hit[1]
        self._check_inputs(ctx, out)
        stats = np.asarray(self.stats_fn(ctx, out))
        if len(self._memo) >= 8:  # a run asks for teacher, student, baseline, candidates
            self._memo.pop(next(iter(self._memo)))
        self._memo[id(out)] = (out, stats)
        return stats

    def value(self, ctx: EvalContext, out: Outputs, index: np.ndarray) -> float:
        """The metric over the examples at ``index``."""
        self._check_inputs(ctx, out)
        if self.per_example_fn is not None:
            vals = self.per_example(ctx, out)[index]
            return float(vals.mean()) if len(vals) else float("nan")
        if self.stats_fn is not None and self.from_stats is not None:
            if len(index) == 0:
                return float("nan")
            return float(self.from_stats(self.statistics(ctx, out)[index].sum(axis=0)))
        if self.aggregate_fn is None:
            raise ValueError(f"metric {self.name!r} is a run-level figure")
        return float(self.aggregate_fn(ctx, out, index))

    def _check_inputs(self, ctx: EvalContext, out: Outputs) -> None:
        if self.needs_gold and not ctx.has_gold:
            raise SpecError(f"metric {self.name!r} needs gold labels or references; the suite's "
                            "data names no label field")
        if self.needs_scores and (out.scores is None or ctx.teacher.scores is None):
            raise SpecError(f"metric {self.name!r} needs scores from both models; the "
                            "predictions carry labels only")
        if "usage" in self.needs and out.output_tokens is None:
            raise SpecError(f"metric {self.name!r} needs token usage; this model's outputs "
                            "carry none")
        if "finish" in self.needs and out.finish_reasons is None:
            raise SpecError(f"metric {self.name!r} needs finish reasons; this model's outputs "
                            "carry none")


_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the registry (a name may be registered once)."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def known_metrics() -> list[str]:
    return sorted(_REGISTRY)


def all_metrics() -> list[Metric]:
    """Every registered metric, by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_metric(name: str, *, local_module: Path | None = None,
               higher_is_better: bool | None = None) -> Metric:
    """The metric called ``name``; ``evaluate:<module>`` loads a Hugging Face evaluate module.

    ``local_module`` is the resolved file or folder of an ``evaluate:<path>`` metric (the rubric
    loader resolves it against the rubric file and the repository root); ``higher_is_better``
    its direction when the module does not declare one.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith("evaluate:"):
        return _evaluate_metric(name, local_module, higher_is_better)
    if judge_metric_parts(name) is not None:
        return _judge_metric(name)
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SpecError(f"unknown metric {name!r}{hint}; known metrics: {', '.join(known_metrics())}, "
                    "evaluate:<module>, or a judge's judge:<name> and "
                    f"{', '.join(f'{f}:<name>' for f in JUDGE_FIGURES)}")


def check_applies(metric: Metric, *, task: str, has_gold: bool) -> None:
    """A SpecError when ``metric`` is of another task or needs gold the data does not have."""
    if task not in metric.tasks:
        fitting = [m.name for m in all_metrics() if task in m.tasks]
        raise SpecError(f"{metric.name} is a {' / '.join(sorted(metric.tasks))} metric; a {task} "
                        f"suite takes: {', '.join(fitting)}")
    if metric.needs_gold and not has_gold:
        free = [m.name for m in all_metrics() if task in m.tasks and not m.needs_gold
                and m.kind != "suite"]
        raise SpecError(f"{metric.name} needs gold labels or references and the suite's data "
                        f"names no label field; label-free metrics: {', '.join(free)}")


# --------------------------------------------------------------------------- classification

def _labels(out: Outputs) -> np.ndarray:
    if out.labels is None:
        raise SpecError("this metric needs label outputs")
    return out.labels


def _correct(ctx: EvalContext, out: Outputs) -> np.ndarray:
    if ctx.gold is None:
        raise SpecError("this metric needs gold labels; the suite's data names no label field")
    return np.asarray(_labels(out) == ctx.gold, dtype=float)


def _agreement(ctx: EvalContext, out: Outputs) -> np.ndarray:
    # An invalid answer agrees with nothing, not even another invalid answer.
    s, t = _labels(out), _labels(ctx.teacher)
    return np.asarray((s == t) & (s != INVALID), dtype=float)


def _negative_flip(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_right = _labels(ctx.teacher) == ctx.gold
    return np.asarray(teacher_right & (_labels(out) != ctx.gold), dtype=float)


def _positive_flip(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_wrong = _labels(ctx.teacher) != ctx.gold
    return np.asarray(teacher_wrong & (_labels(out) == ctx.gold), dtype=float)


def _inherited_error(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert ctx.gold is not None
    teacher_wrong = _labels(ctx.teacher) != ctx.gold
    return np.asarray(teacher_wrong & (_labels(out) == _labels(ctx.teacher)), dtype=float)


def _kl(ctx: EvalContext, out: Outputs) -> np.ndarray:
    from scipy.special import rel_entr

    assert out.scores is not None and ctx.teacher.scores is not None
    eps = 1e-12
    p = np.clip(ctx.teacher.scores, eps, 1.0)
    q = np.clip(out.scores, eps, 1.0)
    return np.asarray(rel_entr(p, q).sum(axis=1), dtype=float)


def _macro_f1(ctx: EvalContext, out: Outputs, index: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    assert ctx.gold is not None
    return float(f1_score(ctx.gold[index], _labels(out)[index], average="macro",
                          labels=list(range(len(ctx.labels))), zero_division=0))


def _ece(ctx: EvalContext, out: Outputs, index: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of the top label, equal-width confidence bins."""
    assert ctx.gold is not None and out.scores is not None
    if len(index) == 0:
        return float("nan")
    conf = out.scores[index].max(axis=1)
    correct = (_labels(out)[index] == ctx.gold[index]).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            total += sel.sum() / len(index) * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def _invalid(ctx: EvalContext, out: Outputs) -> np.ndarray:
    if out.labels is not None:
        return np.asarray(out.labels == INVALID, dtype=float)
    return np.array([float(not t.strip()) for t in _texts(out)])


def _truncated(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert out.finish_reasons is not None
    return np.array([float(f == "length") for f in out.finish_reasons])


def _output_tokens(ctx: EvalContext, out: Outputs) -> np.ndarray:
    assert out.output_tokens is not None
    return np.asarray(out.output_tokens, dtype=float)


register(Metric(name="accuracy", tasks=CLS, direction="higher", kind="example", binary=True,
                needs=frozenset({"gold"}), per_example_fn=_correct,
                description="share of examples whose label is the gold label"))
register(Metric(name="agreement", tasks=CLS, direction="higher", kind="example", binary=True,
                needs=frozenset({"teacher"}), per_example_fn=_agreement,
                description="share of examples where the label equals the teacher's"))
register(Metric(name="negative_flip_rate", tasks=CLS, direction="lower", kind="example",
                binary=True, needs=frozenset({"gold"}), per_example_fn=_negative_flip,
                description="share of examples the teacher gets right and the model gets wrong"))
register(Metric(name="positive_flip_rate", tasks=CLS, direction="higher", kind="example",
                binary=True, needs=frozenset({"gold"}), per_example_fn=_positive_flip,
                description="share of examples the teacher gets wrong and the model gets right"))
register(Metric(name="inherited_error_rate", tasks=CLS, direction="lower", kind="example",
                binary=True, needs=frozenset({"gold"}), per_example_fn=_inherited_error,
                description="share of examples where the model gives the teacher's wrong label"))
register(Metric(name="kl_divergence", tasks=CLS, direction="lower", kind="example",
                needs=frozenset({"scores"}), per_example_fn=_kl,
                description="KL(teacher || model) of the label distributions, per example"))
register(Metric(name="macro_f1", tasks=CLS, direction="higher", kind="corpus",
                needs=frozenset({"gold"}), aggregate_fn=_macro_f1,
                description="macro-averaged F1 over the suite's labels (scikit-learn)"))
register(Metric(name="ece", tasks=CLS, direction="lower", kind="corpus",
                needs=frozenset({"gold", "scores"}), aggregate_fn=_ece,
                description="expected calibration error (10 equal-width bins)"))
register(Metric(name="invalid_rate", tasks=BOTH, direction="lower", kind="example", binary=True,
                per_example_fn=_invalid,
                description="share of answers matching no label (classification) or empty "
                "(generation)"))


# --------------------------------------------------------------------------- generation

def _texts(out: Outputs) -> tuple[str, ...]:
    if out.texts is None:
        raise SpecError("this metric needs generation outputs")
    return out.texts


def _refs(ctx: EvalContext) -> tuple[tuple[str, ...], ...]:
    if ctx.references is None:
        raise SpecError("this metric needs references; the suite's data names no label field")
    return ctx.references


def _vs_references(fn_name: str) -> PerExample:
    def per_example(ctx: EvalContext, out: Outputs) -> np.ndarray:
        from harness import textmetrics

        return np.asarray(getattr(textmetrics, fn_name)(_texts(out), _refs(ctx)), dtype=float)

    return per_example


def _vs_teacher(fn_name: str) -> PerExample:
    def per_example(ctx: EvalContext, out: Outputs) -> np.ndarray:
        from harness import textmetrics

        return np.asarray(getattr(textmetrics, fn_name)(_texts(out), _texts(ctx.teacher)),
                          dtype=float)

    return per_example


def _corpus_stats(fn_name: str) -> Stats:
    def stats(ctx: EvalContext, out: Outputs) -> np.ndarray:
        from harness import textmetrics

        return np.asarray(getattr(textmetrics, fn_name)(_texts(out), _refs(ctx)))

    return stats


def _from_stats(fn_name: str) -> FromStats:
    def score(summed: np.ndarray) -> float:
        from harness import textmetrics

        return float(getattr(textmetrics, fn_name)(summed))

    return score


GOLD = frozenset({"gold"})
for _name, _direction, _binary, _desc in (
    ("exact_match", "higher", True, "output equals a reference (whitespace-stripped)"),
    ("exact_match_normalized", "higher", True, "output equals a reference after SQuAD "
     "normalization (lower case, no punctuation or articles)"),
    ("token_f1", "higher", False, "SQuAD token F1 against the best reference"),
    ("rouge_l", "higher", False, "ROUGE-L F-measure (rouge-score, Unicode-aware tokens)"),
    ("chrf", "higher", False, "sentence chrF (sacrebleu), 0..1"),
    ("char_error_rate", "lower", False, "character edit distance / reference length (rapidfuzz)"),
    ("token_error_rate", "lower", False, "token edit distance / reference tokens (rapidfuzz); "
     "phoneme error rate for space-separated phonemes"),
):
    register(Metric(name=_name, tasks=GEN, direction=_direction, kind="example", binary=_binary,
                    needs=GOLD, per_example_fn=_vs_references(_name), description=_desc,
                    stored=True))
register(Metric(name="bleu", tasks=GEN, direction="higher", kind="corpus", needs=GOLD,
                stats_fn=_corpus_stats("bleu_stats"), from_stats=_from_stats("bleu_from_stats"),
                description="corpus BLEU (sacrebleu), 0..1"))
register(Metric(name="chrf_corpus", tasks=GEN, direction="higher", kind="corpus", needs=GOLD,
                stats_fn=_corpus_stats("chrf_stats"), from_stats=_from_stats("chrf_from_stats"),
                description="corpus chrF (sacrebleu), 0..1"))
register(Metric(name="teacher_match", tasks=GEN, direction="higher", kind="example", binary=True,
                needs=frozenset({"teacher"}), per_example_fn=_vs_teacher("teacher_match"),
                stored=True,
                description="output equals the teacher's (normalized); label-free"))
register(Metric(name="teacher_chrf", tasks=GEN, direction="higher", kind="example",
                needs=frozenset({"teacher"}), per_example_fn=_vs_teacher("teacher_chrf"),
                stored=True,
                description="chrF of the output against the teacher's; label-free"))
register(Metric(name="truncated_rate", tasks=GEN, direction="lower", kind="example", binary=True,
                needs=frozenset({"finish"}), per_example_fn=_truncated,
                description="share of outputs cut by max_new_tokens (finish_reason length)"))
register(Metric(name="mean_output_tokens", tasks=GEN, direction="lower", kind="example",
                needs=frozenset({"usage"}), per_example_fn=_output_tokens,
                description="mean generated tokens per example"))


# --------------------------------------------------------------------------- run-level figures

#: Run-level figures computed by economics and coverage; gated on the point value. Their
#: direction is declared here and nowhere else (economics asks :func:`get_metric`).
SUITE_METRICS = {
    "size_reduction": ("higher", "1 - student/teacher parameters"),
    "size_reduction_bytes": ("higher", "1 - student/teacher bytes on disk"),
    "latency_improvement": ("higher", "teacher p50 latency / student p50 latency"),
    "throughput_improvement": ("higher", "student throughput / teacher throughput"),
    "teacher_cost_per_million": ("lower", "USD per million teacher predictions"),
    "student_cost_per_million": ("lower", "USD per million student predictions"),
    "cost_reduction": ("higher", "1 - student/teacher cost per prediction"),
    "payback_predictions": ("lower", "predictions after which the training spend is repaid"),
    "quality_retained_per_gpu_hour": ("higher", "student/teacher quality per GPU-hour of "
                                      "training"),
    "uncovered_fraction": ("lower", "share of eval examples far from every distillation example"),
}
for _name, (_direction, _desc) in SUITE_METRICS.items():
    register(Metric(name=_name, tasks=BOTH, direction=_direction, kind="suite", description=_desc))


# --------------------------------------------------------------------------- evaluate modules

_EVALUATE_CACHE: dict[str, Metric] = {}


def _evaluate_metric(name: str, local_module: Path | None = None,
                     higher_is_better: bool | None = None) -> Metric:
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
            # One reference each as a string, several as a list (evaluate's own convention).
            refs = [ctx.references[i][0] if len(ctx.references[i]) == 1
                    else list(ctx.references[i]) for i in index]
        result = module.compute(predictions=preds, references=refs)
        if not isinstance(result, dict) or not result:
            raise SpecError(f"evaluate module {module_ref!r} returned no score")
        value = result.get(key, next(iter(result.values())))
        return float(value)

    declared = _declared_direction(module)
    if declared is None:
        declared = True if higher_is_better is None else higher_is_better
    elif higher_is_better is not None and higher_is_better != declared:
        raise SpecError(f"evaluate module {module_ref!r} declares higher_is_better={declared}; "
                        f"the rubric says {higher_is_better}")
    metric = Metric(name=name, tasks=BOTH, direction="higher" if declared else "lower",
                    kind="corpus", needs=frozenset({"gold"}), aggregate_fn=compute,
                    description=f"Hugging Face evaluate module {module_ref}")
    _EVALUATE_CACHE[name] = metric
    return metric


def _declared_direction(module: Any) -> bool | None:
    """``higher_is_better`` as an evaluate module declares it (attribute or its info), or None."""
    for source in (module, getattr(module, "_info", lambda: None)()):
        value = getattr(source, "higher_is_better", None) if source is not None else None
        if isinstance(value, bool):
            return value
    return None


# --------------------------------------------------------------------------- judges

#: A judge's health figures, each gateable as ``<figure>:<judge name>`` (a figure of the run),
#: with its direction: consistency, the length-controlled win rate and the agreement with
#: people are better high; a preference for the first or the longer answer and invalid
#: judgments are biases, better low.
JUDGE_FIGURES = {"judge_consistency": "higher", "judge_first_preferred": "lower",
                 "judge_longer_preferred": "lower", "judge_invalid_rate": "lower",
                 "judge_lc": "higher", "judge_agreement": "higher"}
_JUDGE_NAME = re.compile(r"[a-z0-9_-]+")


def judge_metric_parts(name: str) -> tuple[str, str] | None:
    """(family, judge name) of ``judge:<name>`` or a judge figure; None for other metrics."""
    family, sep, judge = name.partition(":")
    if not sep or not _JUDGE_NAME.fullmatch(judge):
        return None
    if family == "judge" or family in JUDGE_FIGURES:
        return family, judge
    return None


def _judged(judge: str) -> PerExample:
    def per_example(ctx: EvalContext, out: Outputs) -> np.ndarray:
        values = (out.judged or {}).get(judge)
        if values is None:
            raise ValueError(f"judge {judge!r} has not judged these outputs")
        return np.asarray(values, dtype=float)

    return per_example


def _judge_metric(name: str) -> Metric:
    """``judge:<name>`` (a per-example value: the student's outcome against the teacher, or a
    pointwise score) or a judge's health figure (a figure of the run)."""
    parts = judge_metric_parts(name)
    assert parts is not None
    family, judge = parts
    if family == "judge":
        return Metric(name=name, tasks=GEN, direction="higher", kind="example",
                      description=f"judge {judge}: the student's win rate against the teacher "
                      "(pairwise) or the judge's score (pointwise)",
                      per_example_fn=_judged(judge))
    return Metric(name=name, tasks=GEN, direction=JUDGE_FIGURES[family], kind="suite",
                  description=f"judge {judge}: {family.removeprefix('judge_').replace('_', ' ')}")
