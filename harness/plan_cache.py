"""A suite's planned items kept in the cache: collecting an unchanged suite reads no data row.

Naming a suite's items needs its ``by:`` slices, so a first collection loads the data. What it
planned is recorded here under everything that decides it: the typed suite (its rubric
included), the bytes of the suite and rubric files, of the data, traffic and distillation files
and of the models' local files (hashed, not parsed), the harness version and the code of the
modules that plan: a record stands for exactly the bytes a collection loaded and checked.
Collecting again loads the suite and rubric files, hashes those files and reads the record; the
data are loaded (and checked) when the suite's first item runs, which plans again from them.
A first collection (an empty cache, or ``--distill-no-cache``) still loads the data.

This module stays light (no numpy, no statistics): a collection that finds its record imports
nothing the run needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.paths import display_path, file_sha256

if TYPE_CHECKING:
    from harness.spec_types import SuiteSpec

#: Bumped when the record changes shape.
PLAN_FORMAT = 1

#: The modules whose code decides a suite's planned items; their bytes are part of the key, so
#: an edit to how slices or checks are planned is never hidden by a record.
PLANNERS = ("spec.py", "spec_types.py", "data.py", "gate.py", "prepared.py", "runner.py",
            "plan_cache.py")


@dataclass(frozen=True)
class PlannedItem:
    """A planned check as collection names it: its check id and its item name."""

    id: str
    item_name: str  # ``criterion[slice]``


def planned_items(plan: Iterable[Any]) -> list[PlannedItem]:
    """The items of a plan (:class:`~harness.gate.PlannedCheck` values), in plan order."""
    return [PlannedItem(id=p.id, item_name=p.item_name) for p in plan]


def plan_key(spec: SuiteSpec) -> str | None:
    """The cache key of the suite's planned items; None when a file it names is missing (the
    load then says which)."""
    from harness import __version__

    files = [spec.path, spec.rubric.path, spec.data.path,
             *(d.path for d in (spec.traffic_data, spec.distillation_data) if d is not None)]
    if not all(f.is_file() for f in files):
        return None
    # The models' local files: a predictions file is checked at collection, so a record stands
    # only for the bytes a collection checked; a folder (weights) by its entries' sizes and times.
    folders: list[list[Any]] = []
    for model in (spec.teacher, *spec.students.values()):
        local = model.local_path
        if local is not None and local.is_file():
            files.append(local)
        elif local is not None and local.is_dir():
            folders.append([str(local), sorted([e.name, e.stat().st_size, e.stat().st_mtime_ns]
                                               for e in local.iterdir())])
    package = Path(__file__).resolve().parent
    code = [file_sha256(package / name) for name in PLANNERS if (package / name).is_file()]
    key = json.dumps(["planned-items", PLAN_FORMAT, __version__, code, repr(spec),
                      [str(f) for f in files], [file_sha256(f) for f in files], folders])
    return hashlib.sha256(key.encode()).hexdigest()


def _record(cache_dir: Path, key: str) -> Path:
    return cache_dir / "planned" / f"{key}.json"


def cached_items(spec: SuiteSpec, cache_dir: Path | None) -> list[PlannedItem] | None:
    """The items an earlier collection planned for ``spec`` (no data row read); None when the
    cache holds no readable record for it."""
    key = plan_key(spec) if cache_dir is not None else None
    if cache_dir is None or key is None:
        return None
    try:
        doc = json.loads(_record(cache_dir, key).read_text(encoding="utf-8"))
        items = [PlannedItem(id=str(c["id"]), item_name=str(c["item"])) for c in doc["checks"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or one this version cannot read: plan from the data
    return items


def keep_items(spec: SuiteSpec, items: list[PlannedItem], cache_dir: Path | None) -> None:
    """Record ``items`` in the cache (atomically), for the next collection of the same suite."""
    key = plan_key(spec) if cache_dir is not None else None
    if cache_dir is None or key is None:
        return
    from harness.cache import PredictionCache
    from harness.fileio import atomic_write_text

    record = _record(cache_dir, key)
    doc = {"suite": display_path(spec.path),
           "checks": [{"id": i.id, "item": i.item_name} for i in items]}
    try:
        PredictionCache._init_root(cache_dir)  # the cache ignores itself
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(record, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache: plan from the data next time
