"""The examples a report shows: teacher and student side by side behind each check and pocket.

For every failing, inconclusive or warning check and every pocket, up to ``limit`` example ids
are picked from the rows that check or pocket covers: the ids the gate already cited first,
then the rows where the student does worse than its reference (most worse first), then rows
where the two answers merely differ. Each picked example is written once per suite, with its
input, reference, both answers and the per-example outcome of every per-example metric the
rubric gates (DESIGN "HTML report": the report's per-suite ``examples``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.data import Dataset
from harness.errors import HarnessError
from harness.gate import TRAFFIC, GateInputs, compare_mode
from harness.metrics import Metric, get_metric
from harness.models.base import Predictions
from harness.outputs import Outputs
from harness.results import Check, Pocket

#: ``--distill-report-examples`` / ``distill run --report-examples`` when not given.
DEFAULT_LIMIT = 50
#: The verdicts whose checks get examples (a pass needs none; an error has no values).
SHOWN_VERDICTS = ("fail", "inconclusive", "warn")


@dataclass(frozen=True)
class ExampleSource:
    """One set of rows the checks read (the eval data or the traffic sample), aligned by row."""

    name: str  # "eval" | "traffic"
    data: Dataset
    inputs: GateInputs  # its slices, features, metric context and the student's outputs
    teacher: Predictions
    student: Predictions


def report_examples(checks: Sequence[Check], pockets: Sequence[Pocket], *, eval_rows: ExampleSource,
                    traffic_rows: ExampleSource | None = None,
                    traffic_pockets: Sequence[Pocket] = (),
                    limit: int = DEFAULT_LIMIT) -> dict[str, dict[str, Any]]:
    """``{id: {input, reference, teacher, student, outcomes, source, checks, pockets, student_worse}}``.

    At most ``limit`` ids per check and per pocket; ``limit`` 0 gives no examples.
    """
    if limit <= 0:
        return {}
    metrics = _outcome_metrics(c.metric for c in checks)
    picker = _Picker(limit, metrics)
    for check in checks:
        if check.verdict not in SHOWN_VERDICTS or _suite_wide(check.metric):
            continue
        traffic = check.scope == TRAFFIC
        source = traffic_rows if traffic else eval_rows
        if source is None:
            continue
        mine = [p for p in (traffic_pockets if traffic else pockets) if p.criterion == check.criterion]
        if check.slice in source.inputs.slices:
            picker.check(source, check, np.asarray(source.inputs.slices[check.slice]))
        elif mine:  # a discovered check: the examples of its pockets, worst pocket first
            rows = np.concatenate([picker.pocket_rows(source, p) for p in mine])
            picker.check(source, check, rows, metric=mine[0].metric)
    for rows_of, found in ((eval_rows, pockets), (traffic_rows, traffic_pockets)):
        if rows_of is not None:
            for pocket in found:
                picker.pocket(rows_of, pocket)
    return picker.entries()


def _suite_wide(name: str) -> bool:
    """Whether ``name`` is a figure of the whole suite (speed, size, cost): no example explains it."""
    try:
        return get_metric(name).kind == "suite"
    except (HarnessError, ValueError):
        return False


def _outcome_metrics(names: Iterable[str]) -> list[Metric]:
    """The per-example metrics among ``names``, in first-seen order."""
    out: list[Metric] = []
    for name in dict.fromkeys(names):
        try:
            metric = get_metric(name)
        except (HarnessError, ValueError):  # an evaluate: module or a suite metric: no rows
            continue
        if metric.per_example_fn is not None:
            out.append(metric)
    return out


class _Picker:
    """Collects the picked rows of every check and pocket, then writes each example once."""

    def __init__(self, limit: int, metrics: Sequence[Metric]):
        self.limit = limit
        self.metrics = list(metrics)
        self.picked: dict[str, tuple[ExampleSource, int]] = {}
        self.cited: dict[str, dict[str, list[str]]] = {}
        self._values: dict[tuple[str, str, str], np.ndarray | None] = {}
        self._differ: dict[str, np.ndarray] = {}

    @staticmethod
    def rows_of(source: ExampleSource, ids: Sequence[str]) -> dict[str, int]:
        """Row of each of ``ids`` that ``source`` has (one scan of its id column, in C)."""
        if not ids:
            return {}
        import pyarrow.compute as pc

        from harness.data import numbers, string_array

        found = pc.is_in(source.data.id_array(), value_set=string_array([str(i) for i in ids]))
        rows = np.flatnonzero(numbers(found, np.int8, 0))
        return {source.data.ids[r]: int(r) for r in rows}

    def values(self, source: ExampleSource, metric: Metric, who: str) -> np.ndarray | None:
        """``metric`` per row of ``source`` for the teacher or the student (None if it cannot)."""
        key = (source.name, metric.name, who)
        if key not in self._values:
            out: Outputs = source.inputs.ctx.teacher if who == "teacher" else source.inputs.student
            try:
                self._values[key] = np.asarray(source.inputs.per_example(metric, out), dtype=float)
            except (HarnessError, ValueError, TypeError, AssertionError):
                self._values[key] = None
        return self._values[key]

    def order(self, source: ExampleSource, rows: np.ndarray, metric: Metric | None,
              first: Sequence[str], reference: str | None) -> list[int]:
        """``rows`` to show: the gate's own ids, then worse than the reference, then differing."""
        rows = np.asarray(rows, dtype=np.intp)
        index = self.rows_of(source, first)
        chosen = [index[i] for i in first if i in index]
        s = self.values(source, metric, "student") if metric is not None else None
        if metric is not None and s is not None:
            sign = 1.0 if metric.higher_is_better else -1.0
            r = self.values(source, metric, "teacher") if reference == "teacher" else None
            if r is not None:
                gap = sign * (s[rows] - r[rows])
            else:  # a value check: the student's own worst rows, best possible value left out
                gap = sign * s[rows] - (sign * s[rows]).max() if len(rows) else sign * s[rows]
            bad = np.argsort(gap, kind="stable")
            # the first ``limit`` new rows are among the first len(chosen) + limit
            chosen.extend(rows[bad[gap[bad] < 0][: len(chosen) + self.limit]].tolist())
        differ = rows[self.differs(source)[rows]]
        chosen.extend(differ[: len(chosen) + self.limit].tolist())
        return list(dict.fromkeys(chosen))[: self.limit]

    def differs(self, source: ExampleSource) -> np.ndarray:
        """Per row of ``source``: whether the teacher's and the student's answers differ."""
        if source.name not in self._differ:
            t_ans, s_ans = _answers(source.teacher), _answers(source.student)
            t, s = np.empty(len(t_ans), dtype=object), np.empty(len(s_ans), dtype=object)
            t[:], s[:] = t_ans, s_ans
            self._differ[source.name] = np.asarray(t != s, dtype=bool)
        return self._differ[source.name]

    def check(self, source: ExampleSource, check: Check, rows: np.ndarray,
              metric: str | None = None) -> None:
        m = next((x for x in self.metrics if x.name == (metric or check.metric)), None)
        reference = "teacher" if compare_mode(check.compare).with_teacher else None
        for r in self.order(source, rows, m, check.examples, reference):
            self._cite(source, r, "checks", check.id)

    def pocket_rows(self, source: ExampleSource, pocket: Pocket) -> np.ndarray:
        """The rows of ``pocket``, from its predicates over the discovery features."""
        feats = source.inputs.features or {}
        mask = np.ones(len(source.data), dtype=bool)
        for p in pocket.predicates:
            if p.feature not in feats:
                index = self.rows_of(source, pocket.ids)
                return np.array([index[i] for i in pocket.ids if i in index], dtype=int)
            mask &= _holds(np.asarray(feats[p.feature]), p.op, p.value)
        return np.flatnonzero(mask)

    def pocket(self, source: ExampleSource, pocket: Pocket) -> None:
        metric = next((x for x in self.metrics if x.name == pocket.metric), None)
        if metric is None and pocket.metric:
            found = _outcome_metrics([pocket.metric])
            metric = found[0] if found else None
        for r in self.order(source, self.pocket_rows(source, pocket), metric, pocket.ids, "teacher"):
            self._cite(source, r, "pockets", pocket.slice)

    def _cite(self, source: ExampleSource, row: int, kind: str, name: str) -> None:
        ex_id = source.data.ids[row]
        self.picked.setdefault(ex_id, (source, row))
        cited = self.cited.setdefault(ex_id, {"checks": [], "pockets": []})
        if name not in cited[kind]:
            cited[kind].append(name)

    def entries(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for ex_id, (source, row) in self.picked.items():
            outcomes: dict[str, dict[str, float | None]] = {}
            worse = False
            for metric in self.metrics:
                t, s = self.values(source, metric, "teacher"), self.values(source, metric, "student")
                if t is None or s is None:
                    continue
                tv, sv = _number(t[row]), _number(s[row])
                outcomes[metric.name] = {"teacher": tv, "student": sv}
                if tv is not None and sv is not None:
                    worse |= (sv < tv) if metric.higher_is_better else (sv > tv)
            out[ex_id] = {
                "input": _input(source.data, row),
                "reference": _reference(source.data, row),
                "teacher": _answers(source.teacher)[row],
                "student": _answers(source.student)[row],
                "outcomes": outcomes,
                "source": source.name,
                "student_worse": bool(worse),
                **self.cited[ex_id],
            }
        return out


def _answers(pred: Predictions) -> Sequence[str]:
    """Each row's answer as text: the label of a classifier, the output of a generator."""
    if pred.labels is not None:
        return pred.labels
    return pred.outputs or ("",) * len(pred.ids)


def _input(data: Dataset, row: int) -> str | dict[str, Any]:
    value = data.inputs[row]
    return {str(k): _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else str(value)


def _reference(data: Dataset, row: int) -> str | list[str] | None:
    if data.labels is not None:
        return data.labels[row]
    if data.references is not None:
        refs = list(data.references[row])
        return refs[0] if len(refs) == 1 else refs
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _number(x: Any) -> float | None:
    v = float(x)
    return round(v, 6) if np.isfinite(v) else None


def _holds(col: np.ndarray, op: str, value: Any) -> np.ndarray:
    """Rows of ``col`` meeting ``op value`` (the ops of a pocket's predicates)."""
    if op in ("lt", "lte", "gt", "gte"):
        num = np.asarray(col, dtype=float)
        with np.errstate(invalid="ignore"):
            return {"lt": num < value, "lte": num <= value, "gt": num > value,
                    "gte": num >= value}[op]
    if op in ("in", "not_in"):
        inside = np.array([v in value for v in col], dtype=bool)
        return inside if op == "in" else ~inside
    if isinstance(value, (list, tuple, dict)):  # numpy would compare element by element
        equal = np.array([v == value for v in col], dtype=bool)
    else:  # Python's == on every row, looped in C
        equal = np.frompyfunc(operator.eq, 2, 1)(col, value).astype(bool)
    return ~equal if op == "ne" else equal
