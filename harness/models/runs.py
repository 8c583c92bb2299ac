"""Running the models of a suite: every adapter built once, each model's outputs read through
the prediction cache, one process at a time per (model, data)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import Dataset
from harness.models import Model, Predictions, load_model
from harness.options import Options
from harness.outputs import Outputs
from harness.results import ModelInfo
from harness.spec_types import SuiteSpec
from harness.tasks import Task


@dataclass(frozen=True)
class ModelRun:
    """One model's outputs on the eval data (and on the traffic sample, when there is one)."""

    model: Model
    predictions: Predictions
    outputs: Outputs
    cached: bool
    traffic: Predictions | None = None
    traffic_outputs: Outputs | None = None

    def info(self, role: str, task: Task) -> ModelInfo:
        """The report's facts of this model: fingerprint, size, usage, what served it, health."""
        facts = self.model.facts()
        usage = self.predictions.usage()  # requests sent by this run, answers read from a cache
        return ModelInfo(role=role, fingerprint=self.model.fingerprint(), params=facts.params,
                         bytes=facts.bytes, type=self.model.spec.type, cached=self.cached,
                         usage=usage, served=self.predictions.served,
                         health=task.health(self.outputs),
                         invalid=invalid_answers(self.predictions, task.invalid(self.outputs)))


#: Invalid answers a report shows per model (all are counted).
INVALID_EXAMPLES = 5


def invalid_answers(pred: Predictions, invalid: np.ndarray | None) -> dict[str, Any] | None:
    """How many answers are invalid, their share and the first few as the model wrote them
    (None when every answer is valid)."""
    at = np.flatnonzero(invalid) if invalid is not None else ()
    if not len(at):
        return None
    assert invalid is not None
    texts = pred.outputs
    return {"n": int(len(at)), "share": float(len(at) / len(invalid)),
            "examples": [{"id": pred.ids[i], **({"answer": texts[i]} if texts is not None else {})}
                         for i in at[:INVALID_EXAMPLES]]}


@dataclass(frozen=True)
class Models:
    """Every model of a run: the teacher, the gated student and the candidate students."""

    teacher: Model
    students: dict[str, Model]
    gated: str

    @property
    def student(self) -> Model:
        return self.students[self.gated]

    def close(self) -> None:
        self.teacher.close()
        for m in self.students.values():
            m.close()


def load_models(spec: SuiteSpec, options: Options) -> Models:
    """Build every adapter (cheap: weights load on first use)."""
    teacher = load_model(spec.teacher, "teacher", options)
    students = {name: load_model(ms, name, options) for name, ms in spec.students.items()}
    return Models(teacher=teacher, students=students, gated=next(iter(spec.students)))


def run_model(model: Model, data: Dataset, n_eval: int, task: Task, spec: SuiteSpec,
              options: Options, cache: Any) -> ModelRun:
    """``model``'s outputs over ``data`` through the cache; rows past ``n_eval`` are traffic.

    With ``traffic_data`` the model runs once over both (eval rows first), so a predictions
    file holding the ids of both, and one cache entry, serve the two.
    """
    pred, cached = _predict(model, data, spec.labels, options, cache)
    if n_eval == len(data):
        return ModelRun(model=model, predictions=pred, outputs=task.encode(pred, spec),
                        cached=cached)
    evals, traffic = pred.subset(np.arange(n_eval)), pred.subset(np.arange(n_eval, len(data)))
    return ModelRun(model=model, predictions=evals, outputs=task.encode(evals, spec),
                    cached=cached, traffic=traffic, traffic_outputs=task.encode(traffic, spec))


def _predict(model: Model, data: Dataset, labels: tuple[str, ...], options: Options,
             cache: Any) -> tuple[Predictions, bool]:
    from harness.cache import predict_cached
    from harness.progress import make_progress

    progress = make_progress(model.role, enabled=None if options.progress else False,
                             stream=options.progress_stream)
    # Parallel runs (pytest-xdist workers) evaluate the same suite at once: the lock makes the
    # second one wait and then read the first one's cached outputs instead of running the model.
    with _model_lock(options.cache_dir, model.fingerprint(), data.sha256):
        return predict_cached(model, data, list(labels), cache, progress)


@contextmanager
def _model_lock(cache_dir: Path | None, fingerprint: str, data_sha: str) -> Iterator[None]:
    if cache_dir is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, the cache still works
        yield
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    lock_path = cache_dir / f".{fingerprint[:16]}-{data_sha[:16]}.lock"
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
