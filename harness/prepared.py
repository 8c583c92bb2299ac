"""A suite loaded, checked and planned, before any model runs: what every step of a run reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.data import Dataset, build_slices
from harness.errors import SpecError
from harness.gate import PlannedCheck
from harness.paths import display_path
from harness.spec_types import EconomicsSettings, SliceSpec, SuiteSpec
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

    def distillation(self) -> Dataset | None:
        """The distillation data (None without ``distillation_data:``), loaded and checked at
        the first call: a run whose coverage comes from the memo never parses it."""
        if self.distill_data is None and self.spec.distillation_data is not None:
            self.distill_data = self.task.load_data(self.spec.distillation_data, self.spec)
        return self.distill_data

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
    return {name: (entry.owner, entry.playbook)
            for entry in spec.slices if entry.owner or entry.playbook
            for name in _entry_slices(spec, entry, data, slices)}


def slice_supports(spec: SuiteSpec, data: Dataset, slices: Mapping[str, np.ndarray]
                   ) -> dict[str, int]:
    """Slice name -> the minimum support of its checks, for each slice a ``by:`` entry with a
    ``min_support`` builds (the others' checks use their criterion's)."""
    return {name: entry.min_support
            for entry in spec.slices if entry.is_by and entry.min_support is not None
            for name in _entry_slices(spec, entry, data, slices)}


def _entry_slices(spec: SuiteSpec, entry: SliceSpec, data: Dataset,
                  slices: Mapping[str, np.ndarray]) -> list[str]:
    """The names of ``slices`` that one ``slices:`` entry declares: a ``by:`` entry's are the
    ones it builds alone on the same data (matched by what it declares, not by name)."""
    if not entry.is_by:
        assert entry.name is not None
        return [entry.name]
    alone = build_slices(dataclasses.replace(spec, slices=(entry,)), data, allow_empty=True)
    return [name for name in alone if name != "overall" and name in slices]


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

