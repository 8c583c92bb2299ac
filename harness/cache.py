"""The prediction cache: a model's outputs over a data set, kept between runs.

An entry is keyed by everything that determines it: the model's fingerprint, the data
set's sha256, the suite's label order (the columns of ``scores``) and
:data:`harness.OUTPUT_FORMAT_VERSION`. A pull request that changes only the student finds the
teacher's outputs here and runs the teacher zero times.

Layout: ``<root>/predictions/<key>.json`` where ``key`` is the sha256 of the key fields. Each
file is two parts, plain JSON (never pickle):

- line 1, the header: ``{"format": "distill-harness-predictions", "version": 1,
  "checksum": "<sha256 of the bytes after this line>"}``
- the rest, the payload: ``{"key": {...}, "ids": [...], "labels": [...] | null,
  "scores": [[...], ...] | null, "scores_dtype": "float64" | null, "outputs": [...] | null}``

Entries are written atomically (a temporary file in the same folder, then ``os.replace``).
An entry that is truncated, corrupt or no longer matches the data set is ignored, counted in
:attr:`PredictionCache.recomputed` and overwritten by the fresh outputs.

Adapters that answer example by example (an endpoint; judges) keep their answers in the one
per-example store instead, :class:`AnswerStore`: ``<root>/answers/<name>.jsonl``, an
append-only file of raw answers (text, finish reason, usage, latency, what served it), one line
per item as it arrives, keyed by a string (an example id, or the digest of a judgment's key).
A run that is killed keeps every answer it got; the next asks only for what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import OUTPUT_FORMAT_VERSION
from harness.data import Dataset
from harness.fileio import atomic_write
from harness.models.base import Model, Predictions, Progress

log = logging.getLogger(__name__)

FILE_FORMAT = "distill-harness-predictions"
FILE_VERSION = 1
DEFAULT_ROOT = Path(".distill-cache")


class CorruptEntry(Exception):
    """A cache file that cannot be trusted (internal: it is recomputed, never raised out)."""


def cache_key(
    fingerprint: str,
    data_sha256: str,
    labels: Sequence[str] = (),
    format_version: int | None = None,
) -> dict[str, Any]:
    """The fields an entry is keyed by, as stored in the entry.

    ``format_version`` defaults to :data:`harness.OUTPUT_FORMAT_VERSION`.
    """
    return {
        "fingerprint": fingerprint,
        "data_sha256": data_sha256,
        "labels": list(labels),
        "output_format_version": OUTPUT_FORMAT_VERSION if format_version is None else format_version,
    }


def key_digest(key: dict[str, Any]) -> str:
    """The file name stem of the entry with ``key``: sha256 of its canonical JSON."""
    blob = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def encode_entry(key: dict[str, Any], predictions: Predictions) -> bytes:
    """The bytes of a cache file holding ``predictions`` under ``key``."""
    scores = predictions.scores
    payload: dict[str, Any] = {
        "key": key,
        "scores": np.asarray(scores, dtype=np.float64).tolist() if scores is not None else None,
        "scores_dtype": str(np.asarray(scores).dtype) if scores is not None else None,
    }
    # the long string columns are written apart (the same bytes json.dumps would write)
    texts = {"ids": predictions.ids, "labels": predictions.labels, "outputs": predictions.outputs}
    # Usage, finish reasons and request latency travel with the outputs: a cache hit keeps them.
    for name in ("input_tokens", "output_tokens", "latency_s"):
        arr = getattr(predictions, name)
        if arr is not None:
            payload[name] = np.asarray(arr).tolist()
    if predictions.finish_reasons is not None:
        texts["finish_reasons"] = predictions.finish_reasons
    if predictions.served is not None:
        payload["served"] = dict(predictions.served)
    fields = {k: json.dumps(v, sort_keys=True, separators=(",", ":")) for k, v in payload.items()}
    fields.update({k: "null" if v is None else _json_strings(v) for k, v in texts.items()})
    body = ("{" + ",".join(f"{json.dumps(k)}:{fields[k]}" for k in sorted(fields)) + "}").encode()
    header = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "checksum": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def _json_strings(values: Sequence[Any]) -> str:
    """``json.dumps(list(values))`` (compact) of strings, without a call per string when none
    needs escaping: a million ids or labels in milliseconds."""
    try:
        flat = "".join(values)
    except TypeError:  # not all strings
        flat = None
    # JSON (``ensure_ascii``) writes printable ASCII as itself, but for the quote and backslash
    if (flat is not None and flat.isascii() and flat.isprintable() and '"' not in flat
            and "\\" not in flat):
        return '["' + '","'.join(values) + '"]' if len(values) else "[]"
    return json.dumps(list(values), separators=(",", ":"))


def decode_entry(raw: bytes, key: dict[str, Any], data: Dataset) -> Predictions:
    """The predictions in a cache file's bytes; :class:`CorruptEntry` if they cannot be trusted."""
    head, sep, body = raw.partition(b"\n")
    if not sep:
        raise CorruptEntry("no header line")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise CorruptEntry(f"bad header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        raise CorruptEntry("not a prediction cache file")
    if header.get("version") != FILE_VERSION:
        raise CorruptEntry(f"file version {header.get('version')!r}")
    if header.get("checksum") != hashlib.sha256(body).hexdigest():
        raise CorruptEntry("checksum mismatch")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise CorruptEntry(f"bad payload: {exc}") from None
    if payload.get("key") != key:
        raise CorruptEntry("key mismatch")
    ids = tuple(payload["ids"])
    if ids != tuple(data.ids):
        raise CorruptEntry("example ids differ from the data set")
    n = len(ids)
    labels = payload.get("labels")
    if labels is not None and len(labels) != n:
        raise CorruptEntry("labels length differs from ids")
    scores = None
    if payload.get("scores") is not None:
        scores = np.asarray(payload["scores"], dtype=np.float64)
        width = len(key["labels"]) if key["labels"] else (scores.shape[1] if scores.ndim == 2 else 0)
        if scores.shape != (n, width):
            raise CorruptEntry(f"scores shape {scores.shape}, expected {(n, width)}")
        scores = scores.astype(np.dtype(payload.get("scores_dtype") or "float64"))
    outputs = payload.get("outputs")
    if outputs is not None and len(outputs) != n:
        raise CorruptEntry("outputs length differs from ids")
    extra: dict[str, Any] = {}
    for name, dtype in (("input_tokens", np.int64), ("output_tokens", np.int64),
                        ("latency_s", np.float64)):
        if payload.get(name) is not None:
            arr = np.asarray(payload[name], dtype=dtype)
            if arr.shape != (n,):
                raise CorruptEntry(f"{name} length differs from ids")
            extra[name] = arr
    if payload.get("finish_reasons") is not None:
        if len(payload["finish_reasons"]) != n:
            raise CorruptEntry("finish_reasons length differs from ids")
        extra["finish_reasons"] = tuple(str(x) for x in payload["finish_reasons"])
    if isinstance(payload.get("served"), dict):
        extra["served"] = payload["served"]
    return Predictions(
        ids=ids,
        labels=tuple(str(x) for x in labels) if labels is not None else None,
        scores=scores,
        outputs=tuple(str(x) for x in outputs) if outputs is not None else None,
        **extra,
    )


class PredictionCache:
    """Model outputs on disk under ``root`` (``None``: caching off, every lookup misses).

    ``recomputed`` lists the entries found corrupt or stale during this run (they were
    ignored and are overwritten by the next :meth:`store`), so a report can say so.
    """

    def __init__(self, root: Path | None = DEFAULT_ROOT):
        self.root = Path(root) if root is not None else None
        self.recomputed: list[Path] = []

    def path(self, fingerprint: str, data: Dataset, labels: Sequence[str] = ()) -> Path | None:
        """The file of the entry for this model, data set and label order (None when off)."""
        if self.root is None:
            return None
        digest = key_digest(cache_key(fingerprint, data.sha256, labels))
        return self.root / "predictions" / f"{digest}.json"

    def load(self, fingerprint: str, data: Dataset, labels: Sequence[str] = ()) -> Predictions | None:
        """The cached predictions of the model with ``fingerprint`` over ``data``, or None.

        A missing entry is None; a corrupt one is None too and is recorded in ``recomputed``.
        """
        path = self.path(fingerprint, data, labels)
        if path is None:
            return None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.info("prediction cache entry %s unreadable (%s); recomputing", path, exc)
            self.recomputed.append(path)
            return None
        try:
            return decode_entry(raw, cache_key(fingerprint, data.sha256, labels), data)
        except (CorruptEntry, KeyError, TypeError, ValueError) as exc:
            log.info("prediction cache entry %s is corrupt (%s); recomputing", path, exc)
            self.recomputed.append(path)
            return None

    def store(
        self,
        fingerprint: str,
        data: Dataset,
        predictions: Predictions,
        labels: Sequence[str] = (),
    ) -> None:
        """Keep ``predictions`` for the model with ``fingerprint`` over ``data`` (atomically)."""
        path = self.path(fingerprint, data, labels)
        if path is None:
            return
        assert self.root is not None
        self._init_root(self.root)
        atomic_write(path, encode_entry(cache_key(fingerprint, data.sha256, labels), predictions))

    @staticmethod
    def _init_root(root: Path) -> None:
        # Like .pytest_cache: the folder ignores itself, so it never lands in a commit.
        root.mkdir(parents=True, exist_ok=True)
        ignore = root / ".gitignore"
        if not ignore.exists():
            try:
                ignore.write_text("# created by distill-harness\n*\n", encoding="utf-8")
            except OSError:
                pass


def predict_cached(
    model: Model,
    data: Dataset,
    labels: Sequence[str],
    cache: PredictionCache | None,
    progress: Progress | None = None,
) -> tuple[Predictions, bool]:
    """``model``'s predictions over ``data``, from ``cache`` when they are there.

    Returns the predictions and whether all of them were served from a cache (their
    ``cached`` flags say which, per example). Fresh predictions are stored (when their ids are
    the data set's, in order) for the next run. A model that answers example by example
    (``answers_per_example``: an endpoint) keeps its raw answers in its own
    :class:`AnswerStore` and decodes them on every run, so it bypasses this whole-set entry: a
    decoding change (a labels map) re-decodes without asking again.
    """
    if progress is not None and getattr(model, "request_latency", False):
        # An endpoint's work is requests: its progress counts requests/s, not examples/s.
        with_unit = getattr(progress, "unit", None)
        if with_unit is not None:
            progress.unit = "requests"  # type: ignore[attr-defined]
    if getattr(model, "answers_per_example", False):
        predictions = model.predict(data, labels, progress)
        flags = predictions.cached
        return predictions, flags is not None and len(flags) > 0 and bool(np.all(flags))
    if cache is None or cache.root is None:
        return model.predict(data, labels, progress), False
    fingerprint = model.fingerprint()
    hit = cache.load(fingerprint, data, labels)
    if hit is not None:
        return dataclasses.replace(hit, cached=np.ones(len(hit), dtype=bool)), True
    predictions = model.predict(data, labels, progress)
    if tuple(predictions.ids) == tuple(data.ids):
        cache.store(fingerprint, data, predictions, labels)
    return predictions, False


# --------------------------------------------------------------------------- per-example store

ANSWERS_FORMAT = "distill-harness-answers"
ANSWERS_VERSION = 1


@dataclass(frozen=True)
class Answer:
    """One raw answer as a model or server gave it, with its usage: what :class:`AnswerStore`
    keeps. Decoding (label matching, a labels map, stop strings, a verdict pattern) happens
    after the store, so a decoding change never asks again."""

    text: str
    finish_reason: str = "unknown"
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    model: str | None = None
    system_fingerprint: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The answer as plain JSON fields."""
        return {"text": self.text, "finish_reason": self.finish_reason,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "latency_s": self.latency_s, "model": self.model,
                "system_fingerprint": self.system_fingerprint}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Answer:
        """The answer in ``rec``; ValueError/TypeError when it is not one."""
        def count(v: Any) -> int | None:
            return None if v is None else int(v)

        if not isinstance(rec.get("text"), str):
            raise ValueError("text is not a string")
        return cls(text=rec["text"], finish_reason=str(rec.get("finish_reason") or "unknown"),
                   input_tokens=count(rec.get("input_tokens")),
                   output_tokens=count(rec.get("output_tokens")),
                   latency_s=float(rec.get("latency_s") or 0.0),
                   model=str(rec["model"]) if rec.get("model") else None,
                   system_fingerprint=str(rec["system_fingerprint"])
                   if rec.get("system_fingerprint") else None)


class AnswerStore:
    """The per-example store: raw answers kept one item at a time, resumable.

    ``<root>/answers/<name>.jsonl``: a header line (:data:`ANSWERS_FORMAT`, its version and
    the caller's ``header``: what every answer in the file depends on, e.g. the model's
    fingerprint and the data set's sha256), then one line per answer,
    ``{"key": …, "text": …, "finish_reason": …, "input_tokens": …, …}``. Lines are only ever
    appended, each in one ``write`` of a file opened ``O_APPEND``, as the answer arrives: a
    killed run keeps every answer it got. On reading, a torn last line and lines that do not
    parse are dropped (those items are asked again) and the first answer of a repeated key
    wins. A file whose header differs belongs to something else: it reads as empty and the
    first :meth:`put` starts it over. Errors are never stored — only answers.

    ``key`` is whatever identifies an item within the file: an example id, or (judges) the
    :func:`key_digest` of everything the judgment depends on, so the key itself is never written.
    """

    def __init__(self, root: Path, name: str, header: dict[str, Any]):
        self.root = Path(root)
        self.path = self.root / "answers" / f"{name}.jsonl"
        self.header = {"format": ANSWERS_FORMAT, "version": ANSWERS_VERSION, **header}
        self._fd: int | None = None
        self._answers: dict[str, Answer] | None = None

    def read(self, wanted: Iterable[str] | None = None) -> dict[str, Answer]:
        """The answers on disk (of the ``wanted`` keys only, when given)."""
        if self._answers is None:
            self._answers = self._load()
        if wanted is None:
            return dict(self._answers)
        return {k: self._answers[k] for k in wanted if k in self._answers}

    def get(self, key: str) -> Answer | None:
        """The stored answer of ``key``, or None."""
        return self.read([key]).get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, answer: Answer) -> None:
        """Append ``answer`` under ``key`` (durable as soon as this returns to a killed process;
        a key already stored keeps its first answer)."""
        if self._answers is None:
            self._answers = self._load()
        if self._fd is None:
            self._open()
        line = json.dumps({"key": key, **answer.to_record()}, ensure_ascii=False,
                          separators=(",", ":")).encode() + b"\n"
        assert self._fd is not None
        os.write(self._fd, line)
        self._answers.setdefault(key, answer)

    def close(self) -> None:
        """Close the file (reads still work; a later :meth:`put` reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> dict[str, Answer]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        lines = raw.split(b"\n")
        if not _is_header(lines[0], self.header):
            log.info("answer store %s belongs to another model or data set; starting over",
                     self.path)
            return {}
        out: dict[str, Answer] = {}
        for line in lines[1:]:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = str(rec["key"])
                answer = Answer.from_record(rec)
            except (ValueError, KeyError, TypeError):
                continue
            out.setdefault(key, answer)
        return out

    def _open(self) -> None:
        """Open for appending; a new (or foreign) file gets the header, a torn tail is cut off."""
        PredictionCache._init_root(self.root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = True
        if self.path.exists():
            raw = self.path.read_bytes()
            if _is_header(raw.split(b"\n", 1)[0], self.header) and b"\n" in raw:
                fresh = False
                keep = raw.rfind(b"\n") + 1
                if keep < len(raw):  # a torn last line: appending after it would spoil the next
                    with self.path.open("r+b") as fh:
                        fh.truncate(keep)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        self._fd = os.open(self.path, flags, 0o644)
        if fresh:
            os.write(self._fd, json.dumps(self.header, sort_keys=True,
                                          separators=(",", ":")).encode() + b"\n")
            self._answers = {}


def _is_header(line: bytes, header: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(line) == header)
    except ValueError:
        return False


class LatencyStore:
    """Latency measurements kept between runs (``<root>/latency/<key>.json``).

    A teacher-versus-student timing depends on both models, the latency settings and the
    machine, so the key is all of them (host name, processor, CPU count, Python); a run whose
    models, settings and host are unchanged reads the measurement back instead of loading four
    models to time them again. ``root`` None (``--distill-no-cache``) keeps nothing: every run
    times afresh. Entries are plain JSON, written atomically; an unreadable one is ignored.
    """

    def __init__(self, root: Path | None = DEFAULT_ROOT):
        self.root = Path(root) / "latency" if root is not None else None

    @staticmethod
    def key(teacher: str, student: str, settings: dict[str, Any]) -> str:
        import os
        import platform

        blob = {"teacher": teacher, "student": student, "settings": settings,
                "host": platform.node(), "machine": platform.machine(),
                "processor": platform.processor(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "format": 1}
        return key_digest(blob)

    def load(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            doc = json.loads((self.root / f"{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def store(self, key: str, doc: dict[str, Any]) -> None:
        if self.root is None:
            return
        PredictionCache._init_root(self.root.parent)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / f"{key}.json",
                     json.dumps(doc, sort_keys=True, allow_nan=False).encode())
