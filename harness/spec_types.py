"""Plain dataclasses for suites, rubrics and model specs (what ``spec.py`` loads)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    """A declared slice: a name and a ``where`` mapping (field -> condition)."""

    name: str
    where: dict[str, Any]
    field: str  # e.g. "slices[2]"
    owner: str | None = None
    playbook: str | None = None


@dataclass(frozen=True)
class DiscoverySpec:
    features: tuple[str, ...] | None = None
    max_predicates: int = 2
    min_support: int = 30
    include_length: bool = False


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


@dataclass(frozen=True)
class RubricSpec:
    path: Path
    id: str
    version: int | str
    criteria: tuple[Criterion, ...]
    teacher_floor: float | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)


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
    slices: tuple[SliceSpec | dict[str, Any], ...] = ()
    discovery: DiscoverySpec = dataclasses.field(default_factory=DiscoverySpec)
    distillation_data: DataSpec | None = None
    traffic_data: DataSpec | None = None
    economics: dict[str, Any] = dataclasses.field(default_factory=dict)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def student(self) -> ModelSpec:
        """The student the gate judges: ``student``, or the first of ``students``."""
        return next(iter(self.students.values()))
