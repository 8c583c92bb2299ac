"""Per-example metric values kept between runs, next to the outputs they were computed from.

A per-example metric is a pure function of a model's outputs and of what the metric reads
besides (references or gold labels, the teacher's outputs): its values are stored under the
sha256 of exactly those inputs, the metric's name and :data:`VALUES_VERSION`. A pull request
that changes no model then reads every chrF, ROUGE or edit rate back instead of recomputing it
for every candidate student.

Only metrics that declare it (``Metric.stored``: text metrics, a pure function of these inputs)
are stored; a metric over label codes is a vectorized numpy expression, cheaper than the file
that would hold it, and a judge's values depend on more than the outputs.
The store is used inside :func:`metric_store` (the runner opens it over a run with its cache
folder); outside it, values are simply computed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when a stored metric's computation changes: older values are no longer read.
VALUES_VERSION = 1

_ROOT: ContextVar[Path | None] = ContextVar("distill_metric_store", default=None)


@contextmanager
def metric_store(root: Path | None) -> Iterator[None]:
    """Within the block, per-example text metric values are read from / written to ``root``.

    ``root`` None (the cache is off) computes every value.
    """
    token = _ROOT.set(Path(root) if root is not None else None)
    try:
        yield
    finally:
        _ROOT.reset(token)


def _texts_digest(h: Any, texts: Any) -> None:
    for t in texts:
        raw = t.encode("utf-8") if isinstance(t, str) else repr(t).encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)


def _outputs_digest(h: Any, out: Any) -> None:
    for name in ("labels", "scores", "texts", "input_tokens", "output_tokens", "finish_reasons"):
        value = getattr(out, name, None)
        h.update(f"|{name}:".encode())
        if value is None:
            h.update(b"-")
        elif isinstance(value, np.ndarray):
            h.update(str(value.dtype).encode() + str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(str(len(value)).encode())
            _texts_digest(h, value)


def values_key(metric: Any, ctx: Any, out: Any) -> str:
    """The sha256 of everything ``metric``'s per-example values over ``out`` depend on."""
    h = hashlib.sha256(f"distill-metric-values\0{VALUES_VERSION}\0{metric.name}\0".encode())
    _outputs_digest(h, out)
    h.update(b"|teacher")
    _outputs_digest(h, ctx.teacher)
    h.update(b"|labels:" + "\0".join(ctx.labels).encode())
    h.update(b"|gold:")
    if ctx.gold is not None:
        h.update(np.ascontiguousarray(ctx.gold).tobytes())
    h.update(b"|references:")
    for refs in ctx.references or ():
        h.update(len(refs).to_bytes(4, "little"))
        _texts_digest(h, refs)
    return h.hexdigest()


def stored_values(metric: Any, ctx: Any, out: Any,
                  compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``, or the values stored for the same inputs (and stored when computed)."""
    root = _ROOT.get()
    if root is None or not getattr(metric, "stored", False):
        return compute()
    path = root / "metrics" / f"{values_key(metric, ctx, out)}.npy"
    try:
        values = np.load(path, allow_pickle=False)
        if values.shape == (len(out),) and values.dtype == np.float64:
            return values
    except (OSError, ValueError, EOFError):
        pass  # absent or unreadable: recompute (and overwrite)
    values = np.asarray(compute(), dtype=np.float64)
    buf = io.BytesIO()
    np.save(buf, values, allow_pickle=False)
    try:
        from harness.fileio import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
    except OSError:
        pass  # a read-only cache: compute again next time
    return values
