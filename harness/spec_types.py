"""Plain frozen dataclasses for suites, rubrics and model specs: what ``spec.load_suite`` returns.

Every setting of a suite is typed here once, when the suite loads (economics, training facts,
token prices, coverage, discovery, slices): nothing after loading reads the raw YAML. This
module imports nothing of the harness, so every layer can use its types.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TokenPrices:
    """A model's ``metadata.usd_per_million_tokens``: USD per million input / output tokens."""

    input: float = 0.0
    output: float = 0.0

    def usd(self, input_tokens: float, output_tokens: float) -> float:
        """US dollars for that many input and output tokens."""
        return (self.input * input_tokens + self.output * output_tokens) / 1e6


@dataclass(frozen=True)
class TrainingFacts:
    """A student's validated ``metadata.training``: what its distillation cost."""

    gpu_hours: float | None = None
    usd: float | None = None
    examples: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


#: Timed repeats per batch size before the latency stopping rule is first consulted.
DEFAULT_MIN_REPEATS = 5
#: Timed repeats per batch size after which the measurement stops whatever its CI.
DEFAULT_MAX_REPEATS = 20
#: Stop once the latency ratio's CI half-width is at most this fraction of the ratio.
DEFAULT_TARGET_HALF_WIDTH = 0.10


@dataclass(frozen=True)
class EconomicsSettings:
    """A validated ``economics:`` section of a suite.

    Prices are USD per hour of the machine each model is served on (None: unknown, so no
    cost metrics); the rest are the settings of
    :func:`~harness.economics.latency.measure_latency`: ``repeats`` is the minimum number of
    timed repeats per batch size, ``max_repeats`` the maximum, and the measurement stops in
    between once the ratio's CI half-width is at most ``target_half_width`` × the ratio.
    """

    teacher_usd_per_hour: float | None = None
    student_usd_per_hour: float | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    sample: int = 64
    warmup: int = 2
    repeats: int = DEFAULT_MIN_REPEATS
    threads: int | None = None
    max_repeats: int = DEFAULT_MAX_REPEATS
    target_half_width: float = DEFAULT_TARGET_HALF_WIDTH

    def latency_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``measure_latency`` / ``measure_latencies`` these fix."""
        return {
            "batch_sizes": self.batch_sizes,
            "sample": self.sample,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "max_repeats": self.max_repeats,
            "target_half_width": self.target_half_width,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model (teacher, student or a candidate student).

    ``path`` is as written in the suite; ``local_path`` is the resolved local file or folder
    (None for a hub id, or for ``type: callable``). ``source`` is the suite file that names
    the model, for error messages.
    """

    type: str
    source: Path
    field: str  # field path in the suite, e.g. "teacher" or "students.l2"
    path: str | None = None
    #: The environment variable naming the model's folder (or file) outside the repository.
    path_env: str | None = None
    local_path: Path | None = None
    target: str | None = None
    revision: str | None = None
    batch_size: int = 32
    max_length: int = 128
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: ``metadata.training``, validated (all None when not given).
    training: TrainingFacts = dataclasses.field(default_factory=TrainingFacts)
    #: ``metadata.usd_per_million_tokens``, validated; None when the model is not priced so.
    prices: TokenPrices | None = None
    #: ``generation:`` settings (generation suites and ``type: openai``), or None.
    generation: GenerationSettings | None = None
    device_map: str | None = None
    #: The suite's ``data.prompt`` template: it changes what the model sees, so adapters hash it.
    prompt: str | None = None
    #: The suite's task (``classification`` | ``generation``): adapters pick their head by it.
    task: str = "classification"
    #: The spec as written: adapter-specific keys (``base_url``, ``api``, ``labels_map``, …).
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSettings:
    """How a language model generates: one frozen value, hashed whole into the fingerprint."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float | None = None
    seed: int = 0
    chat: bool = False
    system: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"stop": list(self.stop)}


@dataclass(frozen=True)
class DataSpec:
    """Where a data set lives and which fields mean what."""

    path: Path
    source: Path
    field: str
    sha256: str | None = None
    id: str = "id"
    input: tuple[str, ...] = ("text",)
    label: str | None = None
    features: tuple[str, ...] = ()
    prompt: str | None = None  # generation: "{field}" template of the model's input


@dataclass(frozen=True)
class SliceSpec:
    """One entry of a suite's ``slices:``.

    A named slice has a ``name`` and a ``where`` mapping (field -> condition). A ``by:`` slice
    has no name: it gives one slice per distinct value of the ``by`` fields (among the rows
    ``where`` keeps), named by its predicates (``source=plot``). ``owner`` and ``playbook``
    apply to every slice the entry gives.
    """

    name: str | None
    where: dict[str, Any]
    field: str  # e.g. "slices[2]"
    owner: str | None = None
    playbook: str | None = None
    by: tuple[str, ...] = ()
    min_support: int | None = None

    @property
    def is_by(self) -> bool:
        """Whether this entry is a ``by:`` slice (one slice per value), not a named one."""
        return bool(self.by)


@dataclass(frozen=True)
class DiscoverySpec:
    """The suite's ``discovery:`` section (hidden-pocket search)."""

    features: tuple[str, ...] | None = None  # None: the data's ``features``
    max_predicates: int = 2
    min_support: int = 30
    include_length: bool = False
    enabled: bool = True
    n_bins: int = 4


@dataclass(frozen=True)
class CoverageSettings:
    """The suite's ``coverage:`` section (distillation coverage)."""

    enabled: bool = True
    embeddings: str = "tfidf"  # "tfidf" | "teacher"
    quantile: float = 0.95
    rare_share: float = 0.2


@dataclass(frozen=True)
class Criterion:
    """One rubric line. Exactly one or both of ``min`` / ``max`` is set."""

    name: str
    metric: str
    compare: str
    scope: str
    index: int  # position in the rubric's criteria list
    min: float | None = None
    max: float | None = None
    severity: str = "fail"
    decision: str = "significant"
    alpha: float = 0.05
    confidence: float = 0.95
    min_support: int = 30
    line: int | None = None  # line of the criterion in the rubric file, when known
    against: str = "current"  # baseline_* compares: "current" or a pinned baseline's name
    owner: str | None = None
    playbook: str | None = None
    #: compare: value — whose own metric the check reads: "student" or "teacher".
    model: str = "student"
    #: Examples the teacher answered invalidly: "wrong" (teacher errors) or "exclude" (they
    #: leave teacher-delta/ratio checks).
    teacher_invalid: str = "wrong"


@dataclass(frozen=True)
class RubricSpec:
    path: Path
    id: str
    version: int | str
    criteria: tuple[Criterion, ...]
    teacher_floor: float | None = None
    #: What the rubric's reader should know though nothing is wrong (e.g. a ``confidence``
    #: whose interval is not the one the verdict uses); shown in the terminal and the report.
    notes: tuple[str, ...] = ()


#: A judge's default verdict patterns (the first group is the verdict; the last match wins).
PAIRWISE_VERDICT = r"\[\[(A|B|C)\]\]"
POINTWISE_VERDICT = r"\[\[(\d+(?:\.\d+)?)\]\]"
#: What a judge prompt may name beside the example's plain fields, per mode.
JUDGE_PLACEHOLDERS = {"pairwise": ("prompt", "answer_a", "answer_b", "reference"),
                      "pointwise": ("prompt", "answer", "reference")}


@dataclass(frozen=True)
class JudgeSpec:
    """One entry of ``judges:``: a model that grades answers (DESIGN, "Judges")."""

    name: str
    model: ModelSpec
    prompt_path: Path
    prompt: str  # the prompt file's text (a template with plain {field} placeholders)
    prompt_sha256: str
    mode: str = "pairwise"  # "pairwise" | "pointwise"
    verdict: str = PAIRWISE_VERDICT
    swap: bool = True
    scale: tuple[float, float] = (1.0, 10.0)
    field: str = ""  # e.g. "judges.helpful"
    #: A data field holding a person's verdict (student | teacher | tie), from ``judge_labels``.
    labels_field: str | None = None


@dataclass(frozen=True)
class SuiteSpec:
    path: Path
    root: Path  # the repository root every path must stay inside
    name: str
    version: str
    task: str
    data: DataSpec
    labels: tuple[str, ...]
    teacher: ModelSpec
    students: dict[str, ModelSpec]  # "student" alone, or the candidates of ``students:``
    rubric: RubricSpec
    baseline_path: Path
    slices: tuple[SliceSpec, ...] = ()
    discovery: DiscoverySpec = dataclasses.field(default_factory=DiscoverySpec)
    coverage: CoverageSettings = dataclasses.field(default_factory=CoverageSettings)
    distillation_data: DataSpec | None = None
    traffic_data: DataSpec | None = None
    #: The ``economics:`` section, validated; None when the suite has none (or an empty one).
    economics: EconomicsSettings | None = None
    #: ``judges:``, by name (empty when the suite has none).
    judges: dict[str, JudgeSpec] = dataclasses.field(default_factory=dict)

    @property
    def student(self) -> ModelSpec:
        """The student the gate judges: ``student``, or the first of ``students``."""
        return next(iter(self.students.values()))
