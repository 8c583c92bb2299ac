"""A suite loaded, checked and planned, before any model runs: what every step of a run reads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import Dataset, build_slices
from harness.errors import SpecError
from harness.gate import PlannedCheck
from harness.paths import display_path, file_sha256
from harness.spec_types import EconomicsSettings, SuiteSpec
from harness.tasks import Task, get_task


@dataclass
class PreparedSuite:
    """A suite loaded, checked and planned; nothing has run.

    ``latency`` (student fingerprint -> measured timing) is the one thing a run adds: a suite
    evaluated again in the same session does not time an unchanged student twice.
    """

    spec: SuiteSpec
    data: Dataset
    slices: dict[str, np.ndarray]
    plan: list[PlannedCheck]
    distill_data: Dataset | None = None
    traffic_data: Dataset | None = None
    traffic_slices: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    _model_data: Dataset | None = field(default=None, repr=False)

    @property
    def task(self) -> Task:
        return get_task(self.spec.task)

    @property
    def economics(self) -> EconomicsSettings:
        """The suite's ``economics:`` settings (typed when the suite loaded; defaults if none)."""
        return self.spec.economics or EconomicsSettings()

    @property
    def model_data(self) -> Dataset:
        """What the models run on: the eval data, then the traffic sample when there is one."""
        if self.traffic_data is None:
            return self.data
        if self._model_data is None:
            self._model_data = self.data.concat(self.traffic_data)
        return self._model_data

    @property
    def declared_slices(self) -> dict[str, np.ndarray]:
        """The declared slices of the eval data (``overall`` left out)."""
        return {k: v for k, v in self.slices.items() if k != "overall"}


def slice_owners(spec: SuiteSpec, data: Dataset, slices: Mapping[str, np.ndarray]
                 ) -> dict[str, tuple[str | None, str | None]]:
    """Slice name -> (owner, playbook) of the ``slices:`` entry that declared it.

    A ``by:`` entry gives one slice per value: its slices are the ones it builds alone on the
    same data, so an owner is matched by what the entry declares, not by the slice's name.
    """
    owners: dict[str, tuple[str | None, str | None]] = {}
    for entry in spec.slices:
        if not (entry.owner or entry.playbook):
            continue
        if not entry.is_by:
            assert entry.name is not None
            owners[entry.name] = (entry.owner, entry.playbook)
            continue
        alone = build_slices(dataclasses.replace(spec, slices=(entry,)), data, allow_empty=True)
        for name in alone:
            if name != "overall" and name in slices:
                owners[name] = (entry.owner, entry.playbook)
    return owners


def discovery_features(spec: SuiteSpec, data: Dataset) -> dict[str, np.ndarray]:
    """The columns the pocket search conjoins: ``discovery.features`` (default
    ``data.features``) and, when asked, the input's length in words."""
    names = spec.discovery.features if spec.discovery.features is not None else spec.data.features
    feats: dict[str, np.ndarray] = {}
    for name in names:
        if name in data.features:
            feats[name] = data.features[name]
        else:
            col = np.empty(len(data), dtype=object)
            col[:] = [r.get(name) for r in data.records]
            if all(v is None for v in col):
                raise SpecError(f"discovery feature {name!r} is not in the data",
                                file=display_path(spec.path), field="discovery.features")
            feats[name] = col
    if spec.discovery.include_length:
        feats["input_words"] = np.array([len(t.split()) for t in data.texts()], dtype=float)
    return feats


#: Bumped when the planned-items record changes shape or what decides a plan changes.
PLAN_FORMAT = 1


def plan_key(spec: SuiteSpec) -> str | None:
    """The cache key of the suite's planned checks: everything that decides them.

    The typed suite (its rubric included), the bytes of the suite and rubric files, of the data
    and of the traffic sample (hashed, not parsed: the slices and traffic slices are built on
    them), and the harness version. None when a data file is missing (the load says why).
    """
    from harness import __version__

    files = [spec.path, spec.rubric.path, spec.data.path]
    if spec.traffic_data is not None:
        files.append(spec.traffic_data.path)
    if not all(f.is_file() for f in files):
        return None
    key = json.dumps(["planned-checks", PLAN_FORMAT, __version__, repr(spec),
                      [str(f) for f in files], [file_sha256(f) for f in files]])
    return hashlib.sha256(key.encode()).hexdigest()


def _plan_record(cache_dir: Path, key: str) -> Path:
    return cache_dir / "planned" / f"{key}.json"


def cached_plan(spec: SuiteSpec, cache_dir: Path | None) -> list[PlannedCheck] | None:
    """The checks planned for ``spec`` by an earlier collection, read from the cache without
    reading a data row; None when the cache has no (readable, matching) record."""
    key = plan_key(spec) if cache_dir is not None else None
    if cache_dir is None or key is None:
        return None
    try:
        doc = json.loads(_plan_record(cache_dir, key).read_text(encoding="utf-8"))
        criteria = {c.name: c for c in spec.rubric.criteria}
        return [PlannedCheck(id=str(c["id"]), criterion=criteria[c["criterion"]],
                             slice=str(c["slice"]), owner=c["owner"], playbook=c["playbook"],
                             kind=str(c["kind"]), rows=str(c["rows"]), declared=c["declared"])
                for c in doc["checks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or one this version cannot read: plan from the data


def keep_plan(spec: SuiteSpec, plan: list[PlannedCheck], cache_dir: Path | None) -> None:
    """Record ``plan`` in the cache, so that collecting the unchanged suite again reads no data."""
    key = plan_key(spec) if cache_dir is not None else None
    if cache_dir is None or key is None:
        return
    from harness.cache import PredictionCache
    from harness.fileio import atomic_write_text

    record = _plan_record(cache_dir, key)
    checks = [{"id": c.id, "criterion": c.criterion.name, "slice": c.slice, "owner": c.owner,
               "playbook": c.playbook, "kind": c.kind, "rows": c.rows, "declared": c.declared}
              for c in plan]
    try:
        PredictionCache._init_root(cache_dir)  # the cache ignores itself
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps({"suite": display_path(spec.path), "checks": checks},
                                             indent=2, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache: plan from the data next time
