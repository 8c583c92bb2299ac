"""What differs between a classification suite and a generation suite, in one place.

A :class:`Task` owns which typed outputs (:mod:`harness.outputs`) its models give, how gold
labels or references are read from the data, which metrics apply, the primary and label-free
metrics, per-example correctness (for coverage and the audit), output health, the teacher audit
and the per-example outcomes a baseline stores. The rest of the core asks the task; it never
branches on ``spec.task`` itself.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.errors import DataError, SpecError
from harness.outputs import INVALID, INVALID_LABEL, EvalContext, LabelOutputs, Outputs, TextOutputs

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.metrics import Metric
    from harness.models.base import Predictions
    from harness.spec_types import DataSpec, SuiteSpec

# --------------------------------------------------------------------------- tasks

class Task(abc.ABC):
    """One kind of suite. Stateless: the instances in :data:`TASKS` are shared."""

    name: ClassVar[str]
    #: The metric of the per-slice table, the quality ratio and the baseline's scorecard.
    primary_metric: ClassVar[str]
    #: The label-free fidelity metric (traffic checks, suites without gold).
    label_free_metric: ClassVar[str]

    # -- data ------------------------------------------------------------------------------

    @abc.abstractmethod
    def load_data(self, spec: DataSpec, suite: SuiteSpec) -> Dataset:
        """The data set ``spec`` names, with its gold labels or references checked."""

    @abc.abstractmethod
    def encode(self, pred: Predictions, suite: SuiteSpec) -> Outputs:
        """A model's predictions as typed outputs."""

    @abc.abstractmethod
    def context(self, data: Dataset, teacher: Outputs, suite: SuiteSpec) -> EvalContext:
        """What the metrics are computed from: gold or references and the teacher's outputs."""

    # -- metrics ---------------------------------------------------------------------------

    def applies(self, metric: Metric) -> bool:
        """Whether ``metric`` can be computed on this task's outputs."""
        return self.name in metric.tasks

    def primary(self, has_gold: bool) -> str:
        """The metric of the per-slice table: the primary one, or the label-free one."""
        return self.primary_metric if has_gold else self.label_free_metric

    def correct(self, ctx: EvalContext, out: Outputs) -> np.ndarray | None:
        """Per-example correctness (1 right, 0 wrong) by the primary metric; None without gold."""
        from harness.metrics import get_metric

        if not ctx.has_gold:
            return None
        return get_metric(self.primary_metric).per_example(ctx, out)

    def health(self, out: Outputs) -> dict[str, float]:
        """Output health of one model: ``truncated_rate``, ``invalid_rate``, where known."""
        out_health: dict[str, float] = {}
        n = len(out)
        if n and out.finish_reasons is not None:
            out_health["truncated_rate"] = sum(f == "length" for f in out.finish_reasons) / n
        invalid = self.invalid(out)
        if n and invalid is not None:
            out_health["invalid_rate"] = float(invalid.mean())
        return out_health

    @abc.abstractmethod
    def invalid(self, out: Outputs) -> np.ndarray | None:
        """Per example, 1.0 where the output is invalid (no label / an empty answer)."""

    # -- teacher audit ---------------------------------------------------------------------

    @abc.abstractmethod
    def audit(self, *, data: Dataset, ctx: EvalContext, teacher: Predictions,
              student: Predictions, slices: Mapping[str, np.ndarray], suite: SuiteSpec,
              ) -> dict[str, Any]:
        """The teacher audit: its accuracy, weak slices, suspect outputs, inherited errors."""

    # -- baselines -------------------------------------------------------------------------

    @abc.abstractmethod
    def outcomes(self, pred: Predictions) -> dict[str, str]:
        """The per-example outcomes a baseline stores: example id -> the student's answer."""

    @abc.abstractmethod
    def decode_outcomes(self, stored: Mapping[str, str], data: Dataset,
                        suite: SuiteSpec) -> Outputs:
        """Typed outputs from stored outcomes, in ``data``'s order."""


class ClassificationTask(Task):
    name = "classification"
    primary_metric = "accuracy"
    label_free_metric = "agreement"

    def load_data(self, spec: DataSpec, suite: SuiteSpec) -> Dataset:
        from harness.data import load_dataset

        return load_dataset(spec, suite.labels)

    def _codes(self, labels: Sequence[str], suite: SuiteSpec, where: str) -> np.ndarray:
        index = {lab: i for i, lab in enumerate(suite.labels)}
        index[INVALID_LABEL] = INVALID
        try:
            return np.fromiter(map(index.__getitem__, labels), dtype=int, count=len(labels))
        except KeyError as exc:
            raise DataError(f"label {exc.args[0]!r} is not one of {', '.join(suite.labels)}",
                            file=where) from None

    def encode(self, pred: Predictions, suite: SuiteSpec) -> LabelOutputs:
        if pred.labels is None:
            raise DataError("a classification suite needs labels from every model; these "
                            "predictions carry texts only", file=suite.path.name)
        return LabelOutputs(labels=self._codes(pred.labels, suite, suite.path.name),
                            scores=pred.scores, input_tokens=pred.input_tokens,
                            output_tokens=pred.output_tokens, finish_reasons=pred.finish_reasons)

    def context(self, data: Dataset, teacher: Outputs, suite: SuiteSpec) -> EvalContext:
        gold = None
        if data.labels is not None:
            gold = self._codes(data.labels, suite, str(data.path))
        return EvalContext(labels=suite.labels, gold=gold, teacher=teacher)

    def invalid(self, out: Outputs) -> np.ndarray | None:
        assert out.labels is not None
        return np.asarray(out.labels == INVALID, dtype=float)

    def audit(self, *, data: Dataset, ctx: EvalContext, teacher: Predictions,
              student: Predictions, slices: Mapping[str, np.ndarray], suite: SuiteSpec,
              ) -> dict[str, Any]:
        from harness import audit

        assert data.labels is not None and teacher.labels is not None
        assert student.labels is not None
        return audit.audit_teacher(
            ids=list(data.ids), gold=list(data.labels), teacher_labels=list(teacher.labels),
            student_labels=list(student.labels), labels=list(suite.labels),
            teacher_scores=teacher.scores, slices=dict(slices),
            floor=suite.rubric.teacher_floor,
            teacher_texts=list(teacher.outputs) if teacher.outputs is not None else None)

    def outcomes(self, pred: Predictions) -> dict[str, str]:
        assert pred.labels is not None
        return dict(zip(pred.ids, pred.labels, strict=True))

    def decode_outcomes(self, stored: Mapping[str, str], data: Dataset,
                        suite: SuiteSpec) -> LabelOutputs:
        return LabelOutputs(labels=self._codes([stored[i] for i in data.ids], suite,
                                               str(suite.baseline_path)))


class GenerationTask(Task):
    name = "generation"
    primary_metric = "exact_match"
    label_free_metric = "teacher_match"

    def load_data(self, spec: DataSpec, suite: SuiteSpec) -> Dataset:
        from harness.data import load_dataset

        return load_dataset(spec, None, references=True)

    def encode(self, pred: Predictions, suite: SuiteSpec) -> TextOutputs:
        if pred.outputs is None:
            raise DataError("a generation suite needs an output text from every model; these "
                            "predictions carry labels", file=suite.path.name)
        return TextOutputs(texts=tuple(pred.outputs), input_tokens=pred.input_tokens,
                           output_tokens=pred.output_tokens, finish_reasons=pred.finish_reasons)

    def context(self, data: Dataset, teacher: Outputs, suite: SuiteSpec) -> EvalContext:
        return EvalContext(labels=(), gold=None, teacher=teacher, references=data.references)

    def invalid(self, out: Outputs) -> np.ndarray | None:
        assert out.texts is not None
        return np.array([float(not t.strip()) for t in out.texts])

    def audit(self, *, data: Dataset, ctx: EvalContext, teacher: Predictions,
              student: Predictions, slices: Mapping[str, np.ndarray], suite: SuiteSpec,
              ) -> dict[str, Any]:
        from harness import audit

        assert data.references is not None and teacher.outputs is not None
        assert student.outputs is not None
        return audit.audit_generation(
            ids=list(data.ids), references=list(data.references),
            teacher_outputs=list(teacher.outputs), student_outputs=list(student.outputs),
            slices=dict(slices), floor=suite.rubric.teacher_floor)

    def outcomes(self, pred: Predictions) -> dict[str, str]:
        assert pred.outputs is not None
        return dict(zip(pred.ids, pred.outputs, strict=True))

    def decode_outcomes(self, stored: Mapping[str, str], data: Dataset,
                        suite: SuiteSpec) -> TextOutputs:
        return TextOutputs(texts=tuple(stored[i] for i in data.ids))


TASKS: dict[str, Task] = {t.name: t for t in (ClassificationTask(), GenerationTask())}


def get_task(name: str) -> Task:
    """The task called ``name`` (the suite schema admits only registered names)."""
    try:
        return TASKS[name]
    except KeyError:
        raise SpecError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
