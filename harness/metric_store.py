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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from harness.memo import code_version, digest, memo_array, memo_root

#: Bump when a stored metric's computation changes in a way the code hash of the metric
#: modules does not show: older values are no longer read.
VALUES_VERSION = 1


class _Digests:
    """The sha256 of each input object seen in one store, computed once per object.

    A run asks for the values of many metrics over the same few outputs (every check, every
    candidate student): hashing every text again for each metric cost more than reading the
    values back. An object is held while its digest is kept, so its ``id`` is not reused.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, bytes]] = {}

    def of(self, obj: Any, digest_of: Callable[[Any], bytes]) -> bytes:
        hit = self._by_id.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = digest_of(obj)
        self._by_id[id(obj)] = (obj, value)
        return value


_STORE: ContextVar[_Digests | None] = ContextVar("distill_metric_store", default=None)


@contextmanager
def metric_store(root: Path | None) -> Iterator[None]:
    """Within the block, per-example text metric values (and the other memoized results of a
    run, :mod:`harness.memo`) are read from / written to ``root``.

    ``root`` None (the cache is off) computes every value.
    """
    token = _STORE.set(_Digests() if root is not None else None)
    try:
        with memo_root(root):
            yield
    finally:
        _STORE.reset(token)


_OUTPUT_FIELDS = ("labels", "scores", "texts", "input_tokens", "output_tokens", "finish_reasons")


def _outputs_digest(out: Any) -> bytes:
    fields = [getattr(out, name, None) for name in _OUTPUT_FIELDS]
    return digest(*[v if v is None or isinstance(v, np.ndarray) else list(v) for v in fields])


def _references_digest(references: Any) -> bytes:
    return digest([list(refs) for refs in references])


def values_key(metric: Any, ctx: Any, out: Any) -> str:
    """The sha256 of everything ``metric``'s per-example values over ``out`` depend on."""
    digests = _STORE.get() or _Digests()
    h = hashlib.sha256(f"distill-metric-values\0{VALUES_VERSION}\0{metric.name}\0".encode())
    # the code that computes them: values of an edited metric are never read back
    h.update(code_version(("harness.metrics", "harness.textmetrics", "harness.outputs"),
                          ("numpy", "sacrebleu", "rouge-score", "rapidfuzz")).encode())
    h.update(digests.of(out, _outputs_digest))
    h.update(b"|teacher")
    h.update(digests.of(ctx.teacher, _outputs_digest))
    h.update(b"|labels:" + "\0".join(ctx.labels).encode())
    h.update(b"|gold:")
    if ctx.gold is not None:
        h.update(np.ascontiguousarray(ctx.gold).tobytes())
    h.update(b"|references:")
    if ctx.references is not None:
        h.update(digests.of(ctx.references, _references_digest))
    return h.hexdigest()


def stored_values(metric: Any, ctx: Any, out: Any,
                  compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``, or the values stored for the same inputs (and stored when computed)."""
    if _STORE.get() is None or not getattr(metric, "stored", False):
        return compute()
    try:
        key = values_key(metric, ctx, out)
    except TypeError:  # an output that is not plain data (memo.memo_key): computed, not kept
        return compute()
    return memo_array("metrics", key, compute, shape=(len(out),), dtype=np.float64)
