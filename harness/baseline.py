"""Baselines: the stored student of a suite, kept in the repository and reviewed in its diffs.

A baseline file (``baselines/<suite>.json``, or the suite's ``baseline:`` path) holds two
things, in this order once its keys are sorted:

- ``about``: what the stored student was measured on — suite name and version, rubric id and
  version, the data's sha256 and size, teacher and student fingerprints, the harness version
  that wrote it, and the per-slice table (n, teacher, student, delta, CI; no timing);
  and the deterministic **scorecard** of the accepted run (``about.scorecard``: quality ratio,
  primary metric, size reduction in parameters and bytes, training metadata and training
  efficiency; the models' params and bytes sit next to their fingerprints). Nothing timed is
  stored (latency lives in reports), so a rewrite of an unchanged run is byte-identical;
- ``outcomes``: the student's answer for every example, one line per example id
  (``"rt-17": "rotten"``), so that a pull request's diff lists exactly the examples whose
  prediction changed. Scores are not stored: every retrained student moves every score, and
  the diff would bury the flips (criteria on score metrics cannot compare with a baseline).

Then ``schema_version``. The file is written atomically (a temporary file in the same folder,
fsync, ``os.replace``) and byte-deterministically (sorted keys, two-space indent, trailing
newline). A rewrite whose content is unchanged leaves the file alone — bytes and mtime — and
``harness_version`` alone is not a change (the stored one is the version that last wrote a
change), as syrupy does for its snapshots.

A **pinned** baseline (``baselines/<suite>@<name>.json``, same format) is a copy of the current
one made by ``distill baseline pin SUITE --as NAME`` (:func:`pin_baseline`); rubric criteria
``against: NAME`` compare with it (:func:`load_pinned`). ``--distill-update-baselines`` writes
only the current file, never a pin.

Loading is strict: a missing, stale (data sha256, suite version, rubric id or version changed)
or corrupt file raises a :class:`~harness.errors.BaselineError` whose text says which file,
what is wrong, and that ``--distill-update-baselines`` rewrites it. The gate turns that into
``error`` checks — never a silent pass.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import Dataset
from harness.errors import BaselineError, SpecError
from harness.fileio import atomic_write
from harness.models.base import Predictions
from harness.outputs import INVALID, INVALID_LABEL, LabelOutputs, Outputs, TextOutputs
from harness.paths import repo_path
from harness.results import ModelInfo, SliceRow, SuiteResult
from harness.spec_types import SuiteSpec

SCHEMA_VERSION = 1
UPDATE_FLAG = "--distill-update-baselines"
#: Decimals kept for the per-slice figures, so a rewrite does not churn on float noise.
DECIMALS = 6
_SHOWN_IDS = 3


class MissingBaseline(BaselineError):
    """No baseline file where the suite expects one."""


class StaleBaseline(BaselineError):
    """The baseline was written for other data, another suite version or another rubric."""


class CorruptBaseline(BaselineError):
    """The baseline file cannot be read, breaks its schema or does not fit the data."""


def _shown(spec: SuiteSpec) -> str:
    """The baseline's path as the repository shows it (``baselines/x.json``)."""
    try:
        return spec.baseline_path.resolve().relative_to(spec.root.resolve()).as_posix()
    except ValueError:
        return str(spec.baseline_path)


def _corrupt(shown: str, field: str, what: str) -> CorruptBaseline:
    return CorruptBaseline(f"{what} — fix or delete the file and run with {UPDATE_FLAG}",
                           file=shown, field=field)


def _ids(ids: Sequence[str]) -> str:
    head = ", ".join(repr(i) for i in ids[:_SHOWN_IDS])
    more = len(ids) - _SHOWN_IDS
    return head + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- the stored baseline

@dataclass(frozen=True)
class StoredBaseline:
    """A baseline file that was read, validated and found current for its suite and data."""

    path: Path
    doc: dict[str, Any]
    shown: str = ""

    @property
    def about(self) -> dict[str, Any]:
        about: dict[str, Any] = self.doc["about"]
        return about

    def teacher_changed(self, teacher_fingerprint: str | None) -> bool:
        """Whether the current teacher differs from the one the baseline was measured with.

        Teacher comparisons stay valid (they use the current teacher); the change is reported.
        """
        if teacher_fingerprint is None:
            return False
        return bool(self.about["teacher"]["fingerprint"] != teacher_fingerprint)

    def summary(self, teacher_fingerprint: str | None = None) -> dict[str, Any]:
        """The report's ``suite["baseline"]`` facts; ``teacher_changed`` compares with the
        current teacher's fingerprint when one is given (False otherwise)."""
        about = self.about
        return {
            "path": self.shown or str(self.path),
            "suite_version": about["suite"]["version"],
            "rubric_version": about["rubric"]["version"],
            "student_fingerprint": about["student"]["fingerprint"],
            "teacher_fingerprint": about["teacher"]["fingerprint"],
            "teacher_changed": self.teacher_changed(teacher_fingerprint),
            "harness_version": about["harness_version"],
        }

    def outputs(self, data: Dataset, labels: Sequence[str]) -> Outputs:
        """The stored student's outputs aligned to ``data.ids``: label codes in ``labels``
        order (classification; an invalid answer is stored as ``<invalid>``) or output texts
        (no labels). No scores are stored."""
        by_id: Mapping[str, str] = self.doc["outcomes"]["by_id"]
        missing = [i for i in data.ids if i not in by_id]
        if missing:
            raise _corrupt(self.shown, "outcomes.by_id",
                           f"no outcome for id {_ids(missing)} of the data")
        if not labels:
            return TextOutputs(texts=tuple(by_id[i] for i in data.ids))
        index = {lab: k for k, lab in enumerate(labels)}
        index[INVALID_LABEL] = INVALID
        try:
            codes = np.fromiter((index[by_id[i]] for i in data.ids), dtype=int, count=len(data))
        except KeyError as exc:
            raise _corrupt(self.shown, "outcomes.by_id",
                           f"label {exc.args[0]!r} is not one of the suite's labels "
                           f"{', '.join(labels)}") from None
        return LabelOutputs(labels=codes)


def load_baseline(spec: SuiteSpec, data: Dataset) -> StoredBaseline:
    """Read, validate and check the suite's baseline against its current spec and data.

    Raises :class:`MissingBaseline`, :class:`StaleBaseline` (data sha256, suite version,
    rubric id or version no longer match; the message says old → new) or
    :class:`CorruptBaseline` (invalid JSON, schema violation, ids that are not the data's,
    labels outside the suite's) — all :class:`~harness.errors.BaselineError`, naming the file
    and how to refresh it.
    """
    path = spec.baseline_path
    shown = _shown(spec)
    if not path.exists():
        err = MissingBaseline(f"no baseline at {shown}: run with {UPDATE_FLAG} to write one")
        err.file = shown
        raise err
    return _load_checked(spec, data, path, shown, f"run with {UPDATE_FLAG} to refresh it")


def parse_baseline(text: str | bytes, shown: str) -> dict[str, Any]:
    """A baseline document from its text, validated against its schema (no suite needed).

    For reading baselines of other revisions (``distill history``, ``distill compare``).
    Raises :class:`CorruptBaseline` naming ``shown``, the field and what is wrong.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _corrupt(shown, "(file)", f"not UTF-8: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(shown, f"line {exc.lineno}",
                       f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    from harness.spec import validate_document

    try:
        validate_document(doc, "baseline", shown)
    except SpecError as exc:
        raise _corrupt(shown, exc.field or "(top level)", exc.detail) from None
    return dict(doc)


def _load_checked(spec: SuiteSpec, data: Dataset, path: Path, shown: str,
                  refresh: str) -> StoredBaseline:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(shown, "(file)", f"cannot read: {exc}") from None
    doc = parse_baseline(text, shown)
    about = doc["about"]
    if about["suite"]["name"] != spec.name:
        raise _corrupt(shown, "about.suite.name",
                       f"written for suite {about['suite']['name']!r}, not {spec.name!r}")
    _check_current(spec, data, about, shown, refresh)
    _check_outcomes(spec, data, doc["outcomes"], shown)
    return StoredBaseline(path=path, doc=doc, shown=shown)


# --------------------------------------------------------------------------- pinned baselines

#: What a pin may be called: it becomes part of a file name (``<suite>@<name>.json``).
PIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CURRENT = "current"


def check_pin_name(name: str, *, file: str | None = None, field: str | None = None) -> str:
    """``name`` when it is a valid pin name, else :class:`~harness.errors.SpecError`."""
    if not PIN_NAME.match(name) or name == CURRENT or name.endswith(".json"):
        raise SpecError(f"pin name {name!r} must match [A-Za-z0-9][A-Za-z0-9_.-]* and not be "
                        f"{CURRENT!r} (e.g. launch, v1.4)", file=file, field=field)
    return name


def pinned_path(spec: SuiteSpec, name: str) -> Path:
    """Where the pin ``name`` of the suite lives: next to the current baseline,
    ``<stem>@<name><suffix>`` (``baselines/<suite>@<name>.json`` by default)."""
    current = spec.baseline_path
    return current.with_name(f"{current.stem}@{name}{current.suffix or '.json'}")


def _shown_path(spec: SuiteSpec, path: Path) -> str:
    try:
        return path.resolve().relative_to(spec.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _suite_arg(spec: SuiteSpec) -> str:
    return _shown_path(spec, spec.path)


def pin_command(spec: SuiteSpec, name: str) -> str:
    """The command that (re)writes the pin ``name``: ``distill baseline pin SUITE --as NAME``."""
    return f"distill baseline pin {_suite_arg(spec)} --as {name}"


def load_pinned(spec: SuiteSpec, data: Dataset, name: str) -> StoredBaseline:
    """Read and check the pinned baseline ``name`` like :func:`load_baseline`.

    A missing pin raises :class:`MissingBaseline` naming the pin and the command that writes
    it; a stale one :class:`StaleBaseline` saying what changed and how to re-pin.
    """
    path = pinned_path(spec, name)
    shown = _shown_path(spec, path)
    if not path.exists():
        err = MissingBaseline(f"no pinned baseline {name!r} at {shown}: write it with "
                              f"`{pin_command(spec, name)}`")
        err.file = shown
        raise err
    return _load_checked(spec, data, path, shown,
                         f"re-pin it with `{pin_command(spec, name)}`")


def pin_baseline(spec: SuiteSpec, data: Dataset, name: str) -> tuple[Path, str]:
    """Copy the suite's current baseline to the pin ``name``; returns (pin path, state).

    The current baseline must load cleanly (:func:`load_baseline`: present and not stale), so
    a pin always describes the suite it is checked against. The copy is byte-identical and
    written atomically. ``state`` is ``"written"`` (new pin), ``"replaced"`` (the pin held
    another baseline) or ``"unchanged"`` (it held this one already; the file is not touched).
    """
    check_pin_name(name, field="--as")
    stored = load_baseline(spec, data)
    payload = stored.path.read_bytes()
    target = pinned_path(spec, name)
    state = "written"
    if target.exists():
        try:
            old = target.read_bytes()
        except OSError:
            old = None
        if old == payload:
            return target, "unchanged"
        state = "replaced"
    atomic_write(target, payload)
    return target, state


def _check_current(spec: SuiteSpec, data: Dataset, about: Mapping[str, Any], shown: str,
                   refresh: str = f"run with {UPDATE_FLAG} to refresh it") -> None:
    changes = []
    if about["data_sha256"] != data.sha256:
        changes.append(f"data sha256 {about['data_sha256'][:12]} → {data.sha256[:12]}")
    if about["suite"]["version"] != spec.version:
        changes.append(f"suite version {about['suite']['version']!r} → {spec.version!r}")
    if str(about["rubric"]["id"]) != spec.rubric.id:
        changes.append(f"rubric id {about['rubric']['id']!r} → {spec.rubric.id!r}")
    if str(about["rubric"]["version"]) != str(spec.rubric.version):
        changes.append(f"rubric version {about['rubric']['version']!r} → {spec.rubric.version!r}")
    if changes:
        raise StaleBaseline(
            f"stale baseline: {'; '.join(changes)}. Its outcomes no longer describe this suite: "
            f"{refresh} (and review the diff)", file=shown)


def _check_outcomes(spec: SuiteSpec, data: Dataset, outcomes: Mapping[str, Any], shown: str) -> None:
    by_id: Mapping[str, str] = outcomes["by_id"]
    known = set(data.ids)
    unknown = sorted(i for i in by_id if i not in known)
    if unknown:
        raise _corrupt(shown, "outcomes.by_id", f"unknown id {_ids(unknown)} (not in the data)")
    missing = [i for i in data.ids if i not in by_id]
    if missing:
        raise _corrupt(shown, "outcomes.by_id", f"no outcome for id {_ids(missing)} of the data")
    if not spec.labels:  # outcomes are free texts (generation): nothing more to check
        return
    if "labels" not in outcomes:
        raise _corrupt(shown, "outcomes.labels", "required for a classification suite")
    allowed = {*spec.labels, INVALID_LABEL}
    for ex_id in data.ids:
        if by_id[ex_id] not in allowed:
            raise _corrupt(shown, f"outcomes.by_id.{ex_id}",
                           f"label {by_id[ex_id]!r} is not one of the suite's labels "
                           f"{', '.join(spec.labels)}")


# --------------------------------------------------------------------------- writing

def _number(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    if not math.isfinite(v):
        return None
    return round(v, DECIMALS) + 0.0  # + 0.0: no "-0.0" in the file


@dataclass(frozen=True)
class RunFacts:
    """What a baseline stores of a run besides its outcomes, before the run is decided (a
    :class:`~harness.results.SuiteResult` has the same attributes)."""

    slices: Sequence[SliceRow]
    economics: Mapping[str, Any]
    teacher: ModelInfo
    student: ModelInfo


def baseline_document(spec: SuiteSpec, result: RunFacts | SuiteResult, data: Dataset,
                      student: Predictions) -> dict[str, Any]:
    """The baseline of this run as a plain JSON document (see the module docstring)."""
    from harness import __version__

    if tuple(student.ids) != tuple(data.ids):
        raise ValueError("the student's predictions are not aligned with the data")
    slices: dict[str, Any] = {}
    for row in result.slices:
        ci = row.ci
        slices[row.slice] = {
            "n": int(row.n),
            "metric": row.metric,
            "teacher": _number(row.teacher),
            "student": _number(row.student),
            "delta": _number(row.delta),
            "ci": [_number(ci[0]), _number(ci[1])] if ci is not None else None,
        }
    from harness.tasks import get_task

    # The task says what an outcome is: a label (classification) or an output text.
    outcomes: dict[str, Any] = {"by_id": get_task(spec.task).outcomes(student)}
    if spec.labels:
        outcomes["labels"] = list(spec.labels)
    return {
        "schema_version": SCHEMA_VERSION,
        "about": {
            "suite": {"name": spec.name, "version": spec.version, "task": spec.task},
            "rubric": {"id": spec.rubric.id, "version": spec.rubric.version},
            "data_sha256": data.sha256,
            "n": len(data),
            "teacher": _model(result.teacher),
            "student": _model(result.student),
            "harness_version": __version__,
            "slices": slices,
            "scorecard": scorecard(result, slices),
        },
        "outcomes": outcomes,
    }


def _model(info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"fingerprint": info.fingerprint}
    for key in ("params", "bytes"):
        value = getattr(info, key, None)
        if value is not None:
            out[key] = int(value)
    return out


def scorecard(result: RunFacts | SuiteResult, slices: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The deterministic scorecard of a run, as a baseline stores it (``about.scorecard``).

    ``primary_metric`` (the metric of the per-slice table; its values per slice with n are
    ``about.slices``), ``quality_ratio`` (student / teacher on it overall), ``size_reduction``
    (``params`` and ``bytes``: 1 − student/teacher), ``training`` (the student's
    ``metadata.training`` facts) and ``training_efficiency`` (quality retained per GPU-hour).
    Unknown figures are null. Nothing timed: latency and cost belong to reports.
    """
    econ: Mapping[str, Any] = result.economics or {}
    overall = slices.get("overall") or {}
    quality = econ.get("quality_retained")
    if quality is None and overall.get("teacher"):
        quality = (overall.get("student") or 0.0) / overall["teacher"]
    training = econ.get("training") if isinstance(econ.get("training"), Mapping) else {}
    return {
        "primary_metric": str(overall.get("metric") or "") or None,
        "quality_ratio": _number(quality),
        "size_reduction": {"params": _number(econ.get("size_reduction")),
                           "bytes": _number(econ.get("size_reduction_bytes"))},
        "training": ({k: v if isinstance(v, int) else _number(v) for k, v in sorted(training.items())
                      if v is not None} or None) if training else None,
        "training_efficiency": _number(econ.get("quality_retained_per_gpu_hour")),
    }


def dumps(doc: Mapping[str, Any]) -> bytes:
    """The file's bytes: sorted keys, two-space indent, trailing newline, UTF-8."""
    text = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _content(doc: Any) -> Any:
    """A document without ``about.harness_version`` (which alone is no reason to rewrite)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("about"), dict):
        return doc
    about = {k: v for k, v in doc["about"].items() if k != "harness_version"}
    return {**doc, "about": about}


def write_baseline(spec: SuiteSpec, result: RunFacts | SuiteResult, data: Dataset,
                   student: Predictions) -> str:
    """Store this run's student as the suite's baseline; returns ``"written"`` or ``"unchanged"``.

    ``"unchanged"`` when the file already holds the same content (``harness_version`` aside):
    the file is not touched. Otherwise it is replaced atomically; an interrupted write leaves
    the old file as it was and no temporary file behind.
    """
    return write_document(spec, baseline_document(spec, result, data, student))[0]


def write_document(spec: SuiteSpec, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Write ``doc`` as the suite's baseline (see :func:`write_baseline`); returns the state
    and the document the file holds afterwards (the old one when its content is unchanged)."""
    payload = dumps(doc)
    path = spec.baseline_path
    if path.exists():
        try:
            old = path.read_bytes()
        except OSError:
            old = None
        if old == payload:
            return "unchanged", doc
        if old is not None:
            try:
                stored = json.loads(old)
                if _content(stored) == _content(json.loads(payload)):
                    return "unchanged", stored
            except (ValueError, UnicodeDecodeError):
                pass  # a corrupt file is simply replaced
    atomic_write(path, payload)
    return "written", doc


# --------------------------------------------------------------------------- the run's step

@dataclass(frozen=True)
class BaselineState:
    """The stored student(s) the ``baseline_*`` criteria of one run compare with.

    ``outputs`` / ``error``: the current baseline; ``by_pin`` / ``errors_by_pin``: pinned
    baselines named by ``against:``; ``section``: the report's ``baseline`` facts; ``notes``
    for the report; ``document``: the baseline this run writes (``--update-baselines``).
    """

    needed: bool
    section: dict[str, Any]
    outputs: Outputs | None = None
    error: str | None = None
    by_pin: dict[str, Outputs] = field(default_factory=dict)
    errors_by_pin: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    document: dict[str, Any] | None = None


def baseline_step(spec: SuiteSpec, data: Dataset, teacher_fingerprint: str, *,
                  flag: str = UPDATE_FLAG, update: RunFacts | None = None,
                  student: Predictions | None = None) -> BaselineState:
    """Read the baselines the rubric compares with, each once.

    With ``update`` (``--update-baselines``: the facts of this run, and ``student`` its
    predictions) the current baseline is the document this run writes, built in memory and
    decoded as a load would decode it: the gate runs once and its baseline checks compare with
    what is written. ``flag`` is the update flag as the front end in use spells it.
    """
    from harness.gate import compare_mode

    wanted = [c for c in spec.rubric.criteria if compare_mode(c.compare).with_baseline]
    section: dict[str, Any] = {"path": repo_path(spec.baseline_path, spec.root)}
    notes: list[str] = []
    document = None
    if update is not None:
        assert student is not None
        document = baseline_document(spec, update, data, student)
    if not wanted:
        return BaselineState(needed=False, section=section, document=document)
    outputs, error = None, None
    if any(c.against == "current" for c in wanted):
        try:
            stored = (StoredBaseline(spec.baseline_path, document, _shown(spec))
                      if document is not None else load_baseline(spec, data))
        except BaselineError as exc:
            error = str(exc).replace(UPDATE_FLAG, flag)
        else:
            summary = stored.summary(teacher_fingerprint)
            section.update(summary)
            if summary["teacher_changed"]:
                notes.append(f"{summary['path']}: the teacher changed since this baseline "
                             "was written (teacher comparisons use the current teacher)")
            outputs = stored.outputs(data, spec.labels)
    by_pin: dict[str, Outputs] = {}
    errors_by_pin: dict[str, str] = {}
    for name in sorted({c.against for c in wanted if c.against != "current"}):
        try:
            pinned = load_pinned(spec, data, name)
        except MissingBaseline as exc:
            # A rubric naming a pin nobody wrote is bad input (distill run: exit 2, this line).
            errors_by_pin[name] = str(exc)
            first = next(c for c in wanted if c.against == name)
            section.setdefault("missing_pins", {})[name] = (
                f"{repo_path(spec.rubric.path, spec.root)}: criteria[{first.index}].against: {exc}")
        except BaselineError as exc:
            errors_by_pin[name] = str(exc).replace(UPDATE_FLAG, flag)
        else:
            by_pin[name] = pinned.outputs(data, spec.labels)
            section.setdefault("pins", {})[name] = {
                "path": pinned.shown, "student_fingerprint": pinned.about["student"]["fingerprint"]}
    return BaselineState(needed=True, section=section, outputs=outputs, error=error,
                         by_pin=by_pin, errors_by_pin=errors_by_pin, notes=tuple(notes),
                         document=document)


def written(spec: SuiteSpec, state: BaselineState, teacher_fingerprint: str) -> dict[str, Any]:
    """Write the document of an update run (:func:`baseline_step` with ``update``); returns the
    report's ``baseline`` section with ``written`` (``"written"`` or ``"unchanged"``)."""
    assert state.document is not None
    status, on_disk = write_document(spec, state.document)
    section = dict(state.section)
    if state.needed and "student_fingerprint" in section:
        # The file may keep the harness version that last changed it: report what it holds.
        section.update(StoredBaseline(spec.baseline_path, on_disk, _shown(spec))
                       .summary(teacher_fingerprint))
    section["written"] = status
    return section


# --------------------------------------------------------------------------- unused files

def _suite_name(path: Path) -> str:
    """The suite a baseline file belongs to (its ``about.suite.name``, else its file stem)."""
    try:
        doc = json.loads(path.read_text("utf-8"))
        name = doc["about"]["suite"]["name"]
        if isinstance(name, str):
            return name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return path.stem


def unused_baselines(root: Path, suite_names: Iterable[str]) -> list[Path]:
    """Files under ``root/baselines/*.json`` whose suite is not among ``suite_names``.

    Only meaningful when every suite of the repository ran (as syrupy judges unused snapshots
    only when every item ran); the caller decides when that is.
    """
    folder = Path(root) / "baselines"
    if not folder.is_dir():
        return []
    names = set(suite_names)
    return [p for p in sorted(folder.glob("*.json")) if p.is_file() and _suite_name(p) not in names]
