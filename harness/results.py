"""Result dataclasses shared by the core modules and the reporters.

Field names follow the report JSON of DESIGN.md; ``to_dict`` gives exactly that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERDICTS = ("pass", "fail", "inconclusive", "warn", "error")


@dataclass(frozen=True)
class Predicate:
    """One condition of a slice: ``feature op value`` with the ops of ``where``."""

    feature: str
    op: str  # eq, ne, in, lt, lte, gt, gte
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Check:
    """One criterion evaluated over one slice: a test item and a report ``checks`` entry."""

    id: str
    criterion: str
    scope: str
    slice: str
    metric: str
    compare: str
    value: float | None
    ci: tuple[float, float] | None
    n: int
    threshold: dict[str, float]
    verdict: str
    message: str
    p_value: float | None = None
    q_value: float | None = None
    examples: tuple[str, ...] = ()
    severity: str = "fail"
    decision: str = "significant"
    test: str | None = None  # the statistical test used, e.g. "exact McNemar (margin 0)"
    teacher: float | None = None
    student: float | None = None
    reference: float | None = None  # teacher or baseline value the student is compared with
    needed: int | None = None  # examples that would decide an inconclusive check
    criterion_index: int | None = None
    owner: str | None = None
    playbook: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: What the check covers (``whole``, ``declared`` or ``discovered``; see
    #: :class:`harness.gate.PlannedCheck`): typed, so nothing decodes it from ``slice``.
    kind: str = "declared"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "criterion": self.criterion,
            "scope": self.scope,
            "slice": self.slice,
            "metric": self.metric,
            "compare": self.compare,
            "value": self.value,
            "ci": list(self.ci) if self.ci is not None else None,
            "n": self.n,
            "threshold": dict(self.threshold),
            "p_value": self.p_value,
            "q_value": self.q_value,
            "verdict": self.verdict,
            "message": self.message,
            "examples": list(self.examples),
            "severity": self.severity,
            "decision": self.decision,
            "test": self.test,
            "teacher": self.teacher,
            "student": self.student,
            "reference": self.reference,
            "needed": self.needed,
        }
        if self.owner:
            d["owner"] = self.owner
        if self.playbook:
            d["playbook"] = self.playbook
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class SliceRow:
    """One row of the per-slice table: the primary metric of teacher and student on a slice,
    their difference with its CI at ``confidence``, and the slice's verdict over the checks on it.

    ``verdict`` is the worst decided verdict of those checks (fail, inconclusive, warn,
    pass); ``error`` only when every check on the slice that is not a pass errored.
    ``errors`` names the checks that errored beside a decided verdict, so a failing slice
    whose baseline check could not run says both.
    """

    slice: str
    n: int
    metric: str
    higher_is_better: bool
    teacher: float
    student: float
    delta: float
    ci: tuple[float, float]
    verdict: str = ""
    errors: tuple[str, ...] = ()
    confidence: float = 0.95  # the two-sided level of ``ci``

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "slice": self.slice, "n": self.n, "metric": self.metric,
            "higher_is_better": self.higher_is_better, "teacher": self.teacher,
            "student": self.student, "delta": self.delta, "ci": list(self.ci),
            "confidence": self.confidence, "verdict": self.verdict}
        if self.errors:
            d["errors"] = list(self.errors)
        return d

    def __getitem__(self, key: str) -> Any:
        """``row["student"]``: the report's key, as ``distill_result`` users read a row."""
        return self.to_dict()[key]


@dataclass(frozen=True)
class Pocket:
    """A discovered slice where the student falls behind the teacher."""

    slice: str
    predicates: tuple[Predicate, ...]
    n: int
    teacher: float
    student: float
    delta: float
    p_value: float | None
    q_value: float | None
    confirmed: bool
    ids: tuple[str, ...] = ()  # a few example ids of the pocket
    criterion: str | None = None
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.slice,
            "predicates": [p.to_dict() for p in self.predicates],
            "n": self.n,
            "teacher": self.teacher,
            "student": self.student,
            "delta": self.delta,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "confirmed": self.confirmed,
            "examples": list(self.ids),
            "criterion": self.criterion,
            "metric": self.metric,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Pocket:
        """The pocket :meth:`to_dict` gave (a kept pocket search read back)."""
        def number(v: Any) -> float | None:
            return None if v is None else float(v)

        return cls(slice=str(d["slice"]),
                   predicates=tuple(Predicate(str(p["feature"]), str(p["op"]), p["value"])
                                    for p in d["predicates"]),
                   n=int(d["n"]), teacher=float(d["teacher"]), student=float(d["student"]),
                   delta=float(d["delta"]), p_value=number(d["p_value"]),
                   q_value=number(d["q_value"]), confirmed=bool(d["confirmed"]),
                   ids=tuple(str(i) for i in d["examples"]), criterion=d["criterion"],
                   metric=d["metric"])


@dataclass(frozen=True)
class CoverageGap:
    """A place the data cannot vouch for.

    ``kind``: ``support`` (too few examples to decide a margin), ``distillation`` (present
    in the eval set, absent or rare in the distillation data), ``embedding`` (a cluster of
    eval examples far from every distillation example).
    """

    kind: str
    slice: str
    n: int
    detail: str
    needed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "slice": self.slice,
            "n": self.n,
            "needed": self.needed,
            "detail": self.detail,
        }
        d.update(self.extra)
        return d


@dataclass(frozen=True)
class ModelInfo:
    role: str
    fingerprint: str
    params: int | None
    bytes: int | None
    type: str
    cached: bool = False
    usage: dict[str, int] | None = None  # input_tokens, output_tokens, requests, cached
    served: dict[str, Any] | None = None  # type: openai — the server's model, system_fingerprint
    health: dict[str, float] = field(default_factory=dict)  # truncated_rate, invalid_rate
    #: Invalid answers: {"n", "share", "examples": [{"id", "answer"}, …]} (None: none known).
    invalid: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "params": self.params,
            "bytes": self.bytes,
            "type": self.type,
            "cached": self.cached,
        }
        if self.usage is not None:
            d["usage"] = dict(self.usage)
        if self.served is not None:
            d["served"] = dict(self.served)
        d.update(self.health)
        if self.invalid is not None:
            d["invalid"] = self.invalid
        return d


@dataclass
class SuiteResult:
    """Everything one suite run found; the ``suites[]`` entry of the report."""

    name: str
    version: str
    task: str
    path: str
    n: int
    data_sha256: str
    rubric: dict[str, Any]
    teacher: ModelInfo
    student: ModelInfo
    checks: list[Check] = field(default_factory=list)
    slices: list[SliceRow] = field(default_factory=list)  # per-slice metric table
    pockets: list[Pocket] = field(default_factory=list)
    coverage_gaps: list[CoverageGap] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    teacher_audit: dict[str, Any] = field(default_factory=dict)
    economics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    traffic: dict[str, Any] | None = None  # the traffic block, when the suite has traffic_data
    #: The examples its checks and pockets cite, teacher and student side by side (by id).
    examples: dict[str, Any] = field(default_factory=dict)
    #: The judges block (health, usage, cost per judge), when the suite has ``judges:``.
    judges: dict[str, Any] | None = None
    # Not in the report: what the session needs after the run (the baseline file, for its git
    # trend; the scored candidate students, for the frontier plot).
    baseline_file: Path | None = field(default=None, repr=False, compare=False)
    candidates: Any = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        """``fail`` when any check fails or errors, else ``pass``."""
        return "fail" if any(c.verdict in ("fail", "error") for c in self.checks) else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "path": self.path,
            "n": self.n,
            "data_sha256": self.data_sha256,
            "rubric": dict(self.rubric),
            "teacher": self.teacher.to_dict(),
            "student": self.student.to_dict(),
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
            "slices": [r.to_dict() for r in self.slices],
            "pockets": [p.to_dict() for p in self.pockets],
            "coverage_gaps": [g.to_dict() for g in self.coverage_gaps],
            "coverage": dict(self.coverage),
            "teacher_audit": dict(self.teacher_audit),
            "economics": dict(self.economics),
            "baseline": dict(self.baseline),
            "notes": list(self.notes),
            **({"traffic": dict(self.traffic)} if self.traffic is not None else {}),
            **({"judges": dict(self.judges)} if self.judges is not None else {}),
            "examples": dict(self.examples),
        }
