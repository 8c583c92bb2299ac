"""Results of pure steps kept between runs, under the sha256 of their exact inputs.

A step whose result is a pure function of what it is given (a seeded statistical test of
per-example arrays, the embedding coverage of two text sets, the frontier plot of a few
points) is computed once per distinct input: the result is stored at
``<cache>/memo/<namespace>/<sha256>.json`` (``.npy`` for an array, ``.bin`` for bytes), where
the sha256 covers the namespace, the caller's version of the step and every input, each typed
and length-prefixed. A pull request that changes only the rubric or one model therefore
recomputes exactly the results whose inputs changed and reads the rest back; nothing is
reused across a change of any input, because every input is in the key.

Entries are written atomically (a temporary file in the same folder, then renamed). A file
that cannot be read back (truncated, edited, the wrong shape) is recomputed and overwritten.
The memo is used inside :func:`memo_root` (the runner opens it over a run with its cache
folder; the cache off, ``None``, computes everything); outside it, values are simply
computed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from harness.fileio import atomic_write

#: Bump when the memo's own layout (the key's encoding, the file format) changes.
MEMO_VERSION = 1

T = TypeVar("T")
P = ParamSpec("P")

_ROOT: ContextVar[Path | None] = ContextVar("distill_memo_root", default=None)


@contextmanager
def memo_root(root: Path | None) -> Iterator[None]:
    """Within the block, memoized results are read from / written to ``root``/memo.

    ``root`` None (the cache is off) computes every result.
    """
    token = _ROOT.set(Path(root) if root is not None else None)
    try:
        yield
    finally:
        _ROOT.reset(token)


def active_root() -> Path | None:
    """The cache folder of the enclosing :func:`memo_root` (None: nothing is kept)."""
    return _ROOT.get()


# --------------------------------------------------------------------------- keys

def _feed(h: Any, value: Any) -> None:
    """Feed ``value`` to ``h`` typed and length-prefixed, so distinct inputs never collide."""
    if value is None:
        h.update(b"N")
    elif isinstance(value, bool):
        h.update(b"B1" if value else b"B0")
    elif isinstance(value, int):
        h.update(b"I" + str(value).encode() + b";")
    elif isinstance(value, float):
        h.update(b"F" + float(value).hex().encode() + b";")
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        h.update(b"S" + len(raw).to_bytes(8, "little") + raw)
    elif isinstance(value, bytes):
        h.update(b"Y" + len(value).to_bytes(8, "little") + value)
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            h.update(b"O" + str(value.shape).encode())
            _feed_items(h, value.ravel().tolist())
        else:
            h.update(b"A" + value.dtype.str.encode() + str(value.shape).encode() + b";")
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        _feed(h, value.item())
    elif isinstance(value, (list, tuple)):
        h.update(b"L" + len(value).to_bytes(8, "little"))
        _feed_items(h, value)
    elif isinstance(value, Mapping):
        h.update(b"M" + len(value).to_bytes(8, "little"))
        for k in sorted(value, key=repr):
            _feed(h, k)
            _feed(h, value[k])
    else:
        raise TypeError(f"memo key: cannot hash a {type(value).__name__}")


def _scalar(value: Any) -> bytes | None:
    """The bytes :func:`_feed` gives a scalar (None: not a scalar, fed recursively)."""
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
        return b"S" + len(raw).to_bytes(8, "little") + raw
    if value is None:
        return b"N"
    if kind is bool:
        return b"B1" if value else b"B0"
    if kind is int:
        return b"I" + str(value).encode() + b";"
    if kind is float:
        return b"F" + value.hex().encode() + b";"
    return None


def _feed_items(h: Any, items: Any) -> None:
    """Each item in order, as :func:`_feed` would; runs of scalars (ids, texts, category
    values) hashed in one update instead of one call per item."""
    if len(items) > 1000 and set(map(type, items)) == {str}:
        # a million ids or category values: their count, every length (in characters), then
        # all their text, with no call per string ("s" starts nothing else _feed writes)
        lengths = np.fromiter(map(len, items), dtype="<i8", count=len(items))
        text = "".join(items).encode("utf-8", "surrogatepass")
        h.update(b"s" + len(items).to_bytes(8, "little") + lengths.tobytes()
                 + len(text).to_bytes(8, "little") + text)
        return
    run: list[bytes] = []
    for item in items:
        raw = _scalar(item)
        if raw is None:
            h.update(b"".join(run))
            run = []
            _feed(h, item)
        else:
            run.append(raw)
    h.update(b"".join(run))


def memo_key(namespace: str, version: int, *parts: Any) -> str:
    """The sha256 (hex) of ``namespace``, ``version`` and every part of the input.

    Parts may be None, bool, int, float, str, bytes, numpy arrays (dtype, shape and bytes),
    lists/tuples and mappings of those; anything else is a ``TypeError`` (a key must never
    silently ignore an input).
    """
    h = hashlib.sha256(f"distill-memo\0{MEMO_VERSION}\0{namespace}\0{version}\0".encode())
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def digest(*parts: Any) -> bytes:
    """The raw sha256 of ``parts``, encoded as :func:`memo_key` encodes them (for a caller that
    keeps the digest of a large input to build several keys from it)."""
    h = hashlib.sha256()
    for part in parts:
        _feed(h, part)
    return h.digest()


_VERSIONS: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
_DISTS: dict[str, str] = {}


def code_version(modules: tuple[str, ...], dists: tuple[str, ...] = ()) -> str:
    """The sha256 of the source files of ``modules`` and the versions of ``dists``.

    Part of a memo key: a result computed by other code (an edited harness module, another
    scipy) is never read back. Modules are found without being imported (a warm run that reads
    every result back need not import them); computed once per process.
    """
    import importlib.metadata
    import importlib.util

    cached = _VERSIONS.get((modules, dists))
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            raise ModuleNotFoundError(f"memo: no source for module {name!r}")
        _feed(h, name)
        _feed(h, Path(origin).read_bytes())
    for dist in dists:
        if dist not in _DISTS:  # reading a distribution's metadata costs milliseconds
            try:
                _DISTS[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                _DISTS[dist] = "absent"
        _feed(h, f"{dist}=={_DISTS[dist]}")
    _VERSIONS[(modules, dists)] = value = h.hexdigest()
    return value


def _keyable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.ndarray, np.generic)):
        return value
    if isinstance(value, Mapping):
        return {k: _keyable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, Sequence)):
        return [_keyable(v) for v in value]
    raise TypeError(f"memo key: cannot hash a {type(value).__name__}")


def plain_parts(arguments: Mapping[str, Any]) -> tuple[Any, ...]:
    """Every argument of a call, by name, as key data (sequences as lists, mappings as dicts,
    arrays as they are): the ``parts`` of :func:`memoized` for a function of data only."""
    return tuple((name, _keyable(value)) for name, value in arguments.items())


# --------------------------------------------------------------------------- entries

def _entry(namespace: str, key: str, suffix: str) -> Path | None:
    root = _ROOT.get()
    if root is None:
        return None
    return root / "memo" / namespace / f"{key}{suffix}"


def _write(path: Path, payload: bytes) -> None:
    """Atomic, without fsync: an entry lost in a crash is recomputed, and a torn one fails to
    parse and is recomputed."""
    try:
        atomic_write(path, payload, mode=0o644, durable=False)
    except OSError:
        pass  # a read-only cache: computed again next time


def memo_json(namespace: str, key: str, compute: Callable[[], T], *,
              encode: Callable[[T], Any] = lambda v: v,
              decode: Callable[[Any], T] = lambda v: v) -> T:
    """``compute()``, or the result stored under ``key`` (and stored when computed).

    ``encode`` turns the result into plain JSON data (dicts, lists, str, numbers; NaN and
    infinities allowed), ``decode`` turns it back; a stored entry that ``decode`` rejects
    (any exception) is recomputed. The file also holds ``key``, so an entry renamed or
    copied to another name is not read.
    """
    path = _entry(namespace, key, ".json")
    if path is None:
        return compute()
    try:
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and doc.get("key") == key:
            return decode(doc["value"])
    except Exception:  # noqa: BLE001 — absent, corrupt or foreign entry: recompute, overwrite
        pass
    value = compute()
    try:
        payload = json.dumps({"key": key, "value": encode(value)}, sort_keys=True,
                             separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError):
        return value  # not plain JSON data (an unusual feature value): not kept
    _write(path, payload)
    return value


def memo_array(namespace: str, key: str, compute: Callable[[], np.ndarray], *,
               shape: tuple[int, ...] | None = None, dtype: Any = None) -> np.ndarray:
    """``compute()`` (a numpy array), or the array stored under ``key``.

    A stored array of another ``shape`` or ``dtype`` (when given), or one that cannot be
    read, is recomputed and overwritten. Arrays are stored without pickles.
    """
    path = _entry(namespace, key, ".npy")
    if path is None:
        return compute()
    try:
        values = np.load(path, allow_pickle=False)
        if ((shape is None or values.shape == tuple(shape))
                and (dtype is None or values.dtype == np.dtype(dtype))):
            return values
    except (OSError, ValueError, EOFError):
        pass  # absent or unreadable: recompute (and overwrite)
    values = np.asarray(compute(), dtype=dtype)
    buf = io.BytesIO()
    np.save(buf, values, allow_pickle=False)
    _write(path, buf.getvalue())
    return values


def memo_bytes(namespace: str, key: str, compute: Callable[[], bytes | None]) -> bytes | None:
    """``compute()`` (bytes, or None which is not stored), or the bytes stored under ``key``.

    The stored file ends with the sha256 of its content, so a truncated or edited entry is
    recomputed.
    """
    path = _entry(namespace, key, ".bin")
    if path is None:
        return compute()
    try:
        raw = path.read_bytes()
        body, digest = raw[:-32], raw[-32:]
        if len(raw) >= 32 and hashlib.sha256(body).digest() == digest:
            return body
    except OSError:
        pass
    value = compute()
    if value is not None:
        _write(path, value + hashlib.sha256(value).digest())
    return value


def memoized(namespace: str, version: int, *, folder: str, modules: tuple[str, ...],
             dists: tuple[str, ...] = (),
             parts: Callable[[Mapping[str, Any]], tuple[Any, ...] | None],
             encode: Callable[[Any], Any] = lambda v: v,
             decode: Callable[[Any], Any] = lambda v: v,
             ) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a pure function so that, inside :func:`memo_root`, its result is kept in
    ``<cache>/memo/<folder>/`` (:func:`memo_json`).

    ``parts`` maps the call's arguments (by name, defaults applied) to the parts of the key,
    or to None for a call that must be computed (an argument that is not data, such as a
    function). The key also holds ``namespace``, ``version`` and :func:`code_version` of
    ``modules`` and ``dists``, so a result of other code is never read back. A call whose
    arguments do not bind, or that raises, is not kept: the function gives its own error.
    """
    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            if _ROOT.get() is None:
                return fn(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return fn(*args, **kwargs)
            bound.apply_defaults()
            try:
                key_parts = parts(bound.arguments)
                key = (memo_key(namespace, version, code_version(modules, dists), *key_parts)
                       if key_parts is not None else None)
            except (TypeError, ValueError):
                key = None  # an argument that is not data: the function judges it
            if key is None:
                return fn(*args, **kwargs)
            return memo_json(folder, key, lambda: fn(*args, **kwargs), encode=encode,
                             decode=decode)

        return call

    return wrap
