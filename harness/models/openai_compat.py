"""``type: openai`` — a teacher (or student) behind any OpenAI-compatible server.

vLLM, SGLang, TGI, llama.cpp, ``transformers serve`` or a hosted API: the server does the
distributed work (tensor/pipeline parallelism, replicas behind a load balancer), the harness is
a bounded-concurrency client of it. This is the only module of the harness that imports
``openai``, and it does so inside methods.

The division of labour follows the ``openai`` package: its ``AsyncOpenAI`` sends each request,
retries 429 (honouring ``Retry-After``), 5xx, connection errors and timeouts with backoff, and
times out each attempt. Ours is what it cannot know: the bound on connections, the per-example
per-example store that makes a run resumable, the one budget of retries shared with malformed answers
(which the client does not retry), and the one-line error that ends a run instead of gating on
partial data. Requests go through the client's plain ``post`` and the answer's JSON is read
here: the typed request/response models cost more CPU per request than all the rest (see
``benchmarks/endpoint_client.py``).

The answers live in the one per-example store (:class:`harness.cache.AnswerStore`),
``<cache dir>/answers/endpoint-<fingerprint>-<data sha256>.jsonl``: one raw answer per example as
it arrives. A run that is killed or loses its server reads it on the next start and asks only
for the examples without an answer. Errors are never written to it. The API key is never written
anywhere: not in the store, the fingerprint, a log line or an error message.

What is kept is the raw answer text; decoding — cutting at the stop strings, matching a label
(:func:`label_matcher`: ``labels_map``, ``label_pattern``) — runs after the store on every run,
so a changed labels map re-decodes without a request. The fingerprint is what is *asked*
(model, revision, api, generation settings, prompt and system text), never what only decodes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.cache import Answer, AnswerStore
from harness.errors import ModelError, SpecError
from harness.models.base import Model, ModelFacts, Predictions, Progress
from harness.outputs import INVALID_LABEL  # an answer matching no label: an invalid output

__all__ = ["EndpointSettings", "OpenAICompatModel", "build", "cut_at_stop", "label_matcher"]

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.options import Options
    from harness.spec_types import GenerationSettings, ModelSpec

log = logging.getLogger(__name__)

#: Sent as the key to a server without auth (``api_key_env`` not set): never a real key from
#: the environment, so a local server never sees the user's hosted-API key by accident.
PLACEHOLDER_KEY = "EMPTY"
#: The store's header names what its answers depend on; bump on a change of what is stored.
STORE_VERSION = 2
#: The journal of earlier versions (``<cache>/endpoints/``), read once and moved into the store.
LEGACY_JOURNAL = "distill-harness-endpoint-journal"
APIS = ("chat", "completions")
DEFAULTS: dict[str, Any] = {"api": "chat", "max_connections": 16, "timeout_s": 60.0, "retries": 5}
#: The rough size of a token for the dry-run cost estimate (English text, BPE vocabularies).
CHARS_PER_TOKEN = 4.0
# Status codes the ``openai`` client retries itself; any other 4xx ends the run at once.
_RETRIED_4XX = (408, 409, 429)
# Backoff between attempts after a malformed answer: the client's own schedule (0.5 s doubling,
# at most 8 s, up to 25 % jitter), so both kinds of retry pace a struggling server alike.
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.5, 8.0
_MESSAGE_CHARS = 300
#: Connections of one ``AsyncOpenAI`` client; more connections are spread over more clients.
_CONNECTIONS_PER_CLIENT = 8


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class EndpointSettings:
    """The endpoint keys of a ``type: openai`` model spec, checked."""

    model: str
    api: str
    base_url: str | None
    base_url_env: str | None
    api_key_env: str | None
    max_connections: int
    timeout_s: float
    retries: int
    labels_map: dict[str, str] = field(default_factory=dict)
    label_pattern: str | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> EndpointSettings:
        from harness.paths import display_path

        raw = spec.raw
        file = display_path(spec.source)

        def bad(key: str, what: str) -> SpecError:
            return SpecError(what, file=file, field=f"{spec.field}.{key}")

        model = raw.get("model")
        if not isinstance(model, str) or not model:
            raise bad("model", "expected the served model name (a non-empty string)")
        api = raw.get("api", DEFAULTS["api"])
        if api not in APIS:
            raise bad("api", f"expected one of {', '.join(APIS)}, got {api!r}")
        base_url, base_url_env = raw.get("base_url"), raw.get("base_url_env")
        if (base_url is None) == (base_url_env is None):
            raise bad("base_url", "expected exactly one of base_url or base_url_env")
        mc, timeout, retries = (raw.get(k, DEFAULTS[k]) for k in ("max_connections", "timeout_s",
                                                                   "retries"))
        if not isinstance(mc, int) or isinstance(mc, bool) or mc < 1:
            raise bad("max_connections", f"expected an integer >= 1, got {mc!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
            raise bad("timeout_s", f"expected a number of seconds > 0, got {timeout!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise bad("retries", f"expected an integer >= 0, got {retries!r}")
        labels_map = raw.get("labels_map") or {}
        if not isinstance(labels_map, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels_map.items()):
            raise bad("labels_map", "expected a mapping of answer text to label")
        label_pattern = raw.get("label_pattern")
        if label_pattern is not None:
            if not isinstance(label_pattern, str) or not label_pattern:
                raise bad("label_pattern", "expected a regular expression whose first group is "
                          "the label")
            try:
                re.compile(label_pattern)
            except re.error as exc:
                raise bad("label_pattern", f"not a valid regular expression: {exc}") from None
        if api == "completions" and spec.generation is not None and spec.generation.chat:
            raise SpecError("generation.chat: true needs api: chat (the server applies its chat "
                            "template to chat messages; a completions prompt is sent as is)",
                            file=file, field=f"{spec.field}.generation.chat")
        if api == "completions" and spec.generation is not None and spec.generation.system:
            raise SpecError("a system text needs api: chat (a completions prompt has no roles); "
                            "put it in data.prompt instead", file=file,
                            field=f"{spec.field}.generation.system")
        return cls(model=model, api=api, base_url=base_url, base_url_env=base_url_env,
                   api_key_env=raw.get("api_key_env"), max_connections=mc,
                   timeout_s=float(timeout), retries=retries, labels_map=dict(labels_map),
                   label_pattern=label_pattern)


# --------------------------------------------------------------------------- answers

def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop sequence (excluded), as the OpenAI API defines ``stop``.

    vLLM already cuts there; ``transformers serve`` returns the stop string too. Cutting again
    is a no-op on the first and makes the second agree with it.
    """
    cut = len(text)
    for s in stop:
        at = text.find(s)
        if 0 <= at < cut:
            cut = at
    return text[:cut]


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


#: Around an answer: punctuation, quotes, brackets and Markdown emphasis (``**``, ``_``, `` ` ``).
_WRAPPING = " \t\r\n.,;:!?\"'`*_~()[]{}<>«»“”‘’"
#: A leading "Answer:" / "Label:" (any case, colon or dash), as chatty models write it.
_LEAD = re.compile(r"^(?:final\s+)?(?:answer|label)\s*[:\-–]\s*", re.IGNORECASE)


def _tolerant(text: str) -> str:
    """``text`` without surrounding punctuation, quotes or emphasis and a leading "Answer:"."""
    out = _normal(text)
    while True:
        before = out
        out = _LEAD.sub("", out.strip(_WRAPPING)).strip(_WRAPPING)
        if out == before:
            return " ".join(out.split())


def label_matcher(labels: Sequence[str], labels_map: dict[str, str] | None = None,
                  label_pattern: str | None = None, *, file: str | None = None,
                  field: str | None = None) -> Callable[[str], str]:
    """A function from answer text to a suite label: tolerant in form, strict about meaning.

    Case and whitespace never matter; the answer is tried as written, then without surrounding
    punctuation, quotes, brackets and Markdown emphasis and a leading ``Answer:``/``Label:``
    (``**Fresh.**`` and ``Answer: "fresh"`` are ``fresh``). ``labels_map`` maps other answers
    to labels (``{"positive": "fresh"}``), matched the same way. With ``label_pattern`` (a
    regex; its first group, or the whole match, is the label) every match is decoded and all
    must name one label: a model that explains first is read, an answer naming two labels is
    not. An answer matching nothing — or two labels — is :data:`INVALID_LABEL`. A map value
    outside ``labels`` is a :class:`SpecError`.
    """
    exact: dict[str, str] = {}
    loose: dict[str, str | None] = {}  # None: two labels share this form (never matched loosely)

    def add(answer: str, lab: str) -> None:
        key = _tolerant(answer)
        if key:
            loose[key] = lab if loose.get(key, lab) == lab else None

    for lab in labels:
        exact.setdefault(_normal(lab), lab)
        add(lab, lab)
    for answer, lab in (labels_map or {}).items():
        if lab not in labels:
            raise SpecError(f"labels_map sends {answer!r} to {lab!r}, which is not one of the "
                            f"suite's labels ({', '.join(labels)})", file=file, field=field)
        exact[_normal(answer)] = lab
        add(answer, lab)

    def one(text: str) -> str:
        hit = exact.get(_normal(text))
        if hit is None:
            hit = loose.get(_tolerant(text))
        return hit if hit is not None else INVALID_LABEL

    if label_pattern is None:
        return one
    pattern = re.compile(label_pattern)

    def by_pattern(text: str) -> str:
        found = {one(m.group(1) if m.re.groups else m.group(0)) for m in pattern.finditer(text)}
        return found.pop() if len(found) == 1 else INVALID_LABEL

    return by_pattern


# --------------------------------------------------------------------------- the adapter

class _Stop(Exception):
    """Internal: one example failed for good; the run ends (answered ones are kept)."""

    def __init__(self, message: str, *, refused: bool):
        super().__init__(message)
        self.refused = refused


class OpenAICompatModel(Model):
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` or ``/v1/completions``.

    Cheap to build: nothing is resolved (URL, key) until :meth:`predict` has something to ask,
    so a run whose answers are all cached needs neither the server nor the key.
    """

    timeable = False  # latency is each request's measured latency, not re-timed by the runner
    counts_params = False
    reports_usage = True
    request_latency = True
    answers_per_example = True  # raw answers in the AnswerStore, decoded on every run

    def __init__(self, spec: ModelSpec, role: str, cache_dir: Path | None = None):
        super().__init__(spec, role)
        from harness.spec_types import GenerationSettings

        self.settings = EndpointSettings.from_spec(spec)
        self.generation: GenerationSettings = spec.generation or GenerationSettings()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._fingerprint: str | None = None

    # ---- identity

    def _where(self, key: str | None = None) -> dict[str, str]:
        from harness.paths import display_path

        return {"file": display_path(self.spec.source),
                "field": f"{self.spec.field}.{key}" if key else self.spec.field}

    def fingerprint(self) -> str:
        """sha256 of what is asked: model, revision, api, generation settings, prompt template
        and system text. Not what only decodes the answers (``labels_map``, ``label_pattern``),
        not the URL, never the key."""
        if self._fingerprint is None:
            blob = {"type": "openai", "model": self.settings.model, "revision": self.spec.revision,
                    "api": self.settings.api, "generation": self.generation.to_dict(),
                    "prompt": self.spec.prompt, "system": self.generation.system}
            from harness.cache import key_digest  # sha256 of canonical JSON, as cache keys

            self._fingerprint = key_digest(blob)
        return self._fingerprint

    def facts(self) -> ModelFacts:
        meta = self.spec.metadata
        params = meta.get("params")
        return ModelFacts(params=int(float(params)) if params is not None else None,
                          extra={"served_model": self.settings.model})

    def validate(self, data: Dataset, labels: Sequence[str]) -> None:
        """A ``labels_map`` that names a label outside the suite's is an error at collection."""
        if labels:
            self._matcher(labels)

    def _matcher(self, labels: Sequence[str]) -> Callable[[str], str]:
        return label_matcher(labels, self.settings.labels_map, self.settings.label_pattern,
                             **self._where("labels_map"))

    # ---- planning (dry run)

    def store(self, data: Dataset) -> AnswerStore | None:
        """The per-example store of this model's raw answers over ``data`` (None: cache off)."""
        if self.cache_dir is None:
            return None
        fp = self.fingerprint()
        return AnswerStore(self.cache_dir, f"endpoint-{fp[:32]}-{data.sha256[:32]}",
                           {"kind": "endpoint", "store_version": STORE_VERSION,
                            "fingerprint": fp, "data_sha256": data.sha256})

    def _stored(self, data: Dataset, ids: list[str], *,
                move: bool = True) -> tuple[AnswerStore | None, dict[str, Answer]]:
        """The store and the answers it holds for ``ids``; answers only an earlier version's
        journal holds are read too (and, with ``move``, put in the store)."""
        store = self.store(data)
        if store is None:
            return None, {}
        answers = store.read(ids)
        if len(answers) < len(ids):
            old = self._journal_answers(data, {i for i in ids if i not in answers})
            if old and move:
                with store:
                    for key, answer in old.items():
                        store.put(key, answer)
            answers.update(old)
        return store, answers

    def _journal_answers(self, data: Dataset, wanted: set[str]) -> dict[str, Answer]:
        """Answers kept by the journal of earlier versions: ``<cache>/endpoints/``, named by a
        fingerprint that included ``labels_map``; its texts were already cut at the stop
        strings (cutting again changes nothing). A journal that does not parse gives nothing."""
        from harness.cache import key_digest

        assert self.cache_dir is not None
        fp = key_digest({"type": "openai", "model": self.settings.model,
                         "revision": self.spec.revision, "api": self.settings.api,
                         "generation": self.generation.to_dict(), "prompt": self.spec.prompt,
                         "system": self.generation.system, "labels_map": self.settings.labels_map})
        path = self.cache_dir / "endpoints" / f"{fp[:32]}-{data.sha256[:32]}.jsonl"
        try:
            lines = path.read_bytes().split(b"\n")
            header = json.loads(lines[0])
        except (OSError, ValueError):
            return {}
        if header != {"format": LEGACY_JOURNAL, "version": 1, "fingerprint": fp,
                      "data_sha256": data.sha256}:
            return {}
        out: dict[str, Answer] = {}
        for line in lines[1:]:
            try:
                rec = json.loads(line)
                key = str(rec["id"])
                if key in wanted:
                    out.setdefault(key, Answer.from_record(rec))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def plan_requests(self, data: Dataset, labels: Sequence[str] = ()) -> dict[str, Any]:
        """What a run over ``data`` would ask: requests (cached answers excluded), the token
        estimate and its price. Asks nothing, reads only the cache.

        Input tokens are estimated as prompt characters / :data:`CHARS_PER_TOKEN`; output tokens
        at ``max_new_tokens`` per request, an upper bound. ``usd`` is None without
        ``metadata.usd_per_million_tokens``.
        """
        n = len(data)
        _, stored = self._stored(data, [str(i) for i in data.ids], move=False)
        cached_ids = set(stored)
        system_chars = len(self.generation.system or "")
        chars = sum(len(t) + system_chars
                    for ex_id, t in zip(data.ids, data.texts(), strict=True)
                    if ex_id not in cached_ids)
        requests = n - len(cached_ids)
        input_tokens = int(math.ceil(chars / CHARS_PER_TOKEN))
        output_tokens = requests * self.generation.max_new_tokens
        return {"model": self.settings.model, "api": self.settings.api, "examples": n,
                "cached": len(cached_ids), "requests": requests,
                "input_tokens_estimate": input_tokens, "output_tokens_max": output_tokens,
                "usd_estimate": (self.spec.prices.usd(input_tokens, output_tokens)
                                 if self.spec.prices is not None else None)}

    # ---- running

    def predict(self, data: Dataset, labels: Sequence[str],
                progress: Progress | None = None) -> Predictions:
        ids = [str(i) for i in data.ids]
        if labels:
            self._matcher(labels)  # a bad labels map fails before any request
        store, answers = self._stored(data, ids)
        from_store = set(answers)
        missing = [i for i, ex_id in enumerate(ids) if ex_id not in answers]
        if missing:
            texts = data.texts()
            jobs = [(ids[i], texts[i]) for i in missing]
            try:
                failure = _run_async(self._ask_all(jobs, answers, store, progress))
            finally:
                if store is not None:
                    store.close()
            if failure is not None:
                raise ModelError(self._failure_line(failure, len(ids), answers), **self._where())
        return self._predictions(ids, answers, labels, from_store)

    def _failure_line(self, failure: _Stop, n: int, answers: dict[str, Answer]) -> str:
        left = n - len(answers)
        kept = (f"the {len(answers)} answered are kept in the cache and a rerun asks only for "
                f"the {left} missing" if self.cache_dir is not None
                else "the prediction cache is off, so a rerun asks for every example again")
        if failure.refused:
            return f"the server refused a request: {failure}; {kept}"
        return (f"{left} of {n} examples have no answer after "
                f"{self.settings.retries} retries (last error: {failure}); {kept}")

    def _key(self) -> str:
        name = self.settings.api_key_env
        if name is None:
            return PLACEHOLDER_KEY
        key = os.environ.get(name)
        if not key:
            raise ModelError(f"the environment variable {name} (api_key_env) is not set; "
                             "it must hold the API key", **self._where("api_key_env"))
        return key

    def _base_url(self) -> str:
        s = self.settings
        if s.base_url is not None:
            return s.base_url
        assert s.base_url_env is not None
        url = os.environ.get(s.base_url_env)
        if not url:
            raise ModelError(f"the environment variable {s.base_url_env} (base_url_env) is not "
                             "set; it must hold the server's URL, e.g. http://127.0.0.1:8000/v1",
                             **self._where("base_url_env"))
        return url

    def _request(self, prompt: str) -> dict[str, Any]:
        g = self.generation
        # Always explicit: servers' defaults differ (vLLM completions: 16 tokens; transformers
        # serve: 1024; temperature may fall back to the model's generation config).
        body: dict[str, Any] = {"model": self.settings.model, "max_tokens": g.max_new_tokens,
                                "temperature": g.temperature, "seed": g.seed}
        if g.stop:
            body["stop"] = list(g.stop)
        if g.top_p is not None:
            body["top_p"] = g.top_p
        if self.settings.api == "chat":
            messages = [{"role": "system", "content": g.system}] if g.system else []
            body["messages"] = [*messages, {"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return body

    def _clients(self, key: str) -> list[Any]:
        """``AsyncOpenAI`` clients holding ``max_connections`` connections between them.

        httpcore's pool looks at every one of its connections on each request, so one pool of
        128 costs several times more CPU per request than 16 pools of 8; the clients share
        nothing else.
        """
        import httpx
        import openai

        s = self.settings
        n_clients = -(-s.max_connections // _CONNECTIONS_PER_CLIENT)
        per = -(-s.max_connections // n_clients)
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        return [openai.AsyncOpenAI(base_url=self._base_url(), api_key=key, max_retries=s.retries,
                                   timeout=s.timeout_s,
                                   http_client=openai.DefaultAsyncHttpxClient(limits=limits))
                for _ in range(n_clients)]

    async def _ask_all(self, jobs: list[tuple[str, str]], answers: dict[str, Answer],
                       store: AnswerStore | None, progress: Progress | None) -> _Stop | None:
        s = self.settings
        key = self._key()
        clients = self._clients(key)
        total, done = len(jobs), 0
        queue: Iterator[tuple[str, str]] = iter(jobs)
        failure: list[_Stop] = []
        if progress is not None:
            progress(0, total)

        async def worker(client: Any) -> None:
            nonlocal done
            for ex_id, prompt in queue:
                if failure:
                    return
                try:
                    answer = await self._ask_one(client, prompt)
                except _Stop as stop:
                    failure.append(stop)
                    return
                answers[ex_id] = answer
                if store is not None:
                    store.put(ex_id, answer)
                done += 1
                if progress is not None:
                    progress(done, total)

        # max_connections workers pull from one queue: at most that many requests in flight.
        n_workers = min(s.max_connections, total)
        workers = [asyncio.create_task(worker(clients[i % len(clients)])) for i in range(n_workers)]
        try:
            while workers:
                finished, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
                for t in finished:
                    t.result()
                workers = list(pending)
                if failure:  # stop at once: the requests in flight would only add to the wait
                    for t in workers:
                        t.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    workers = []
        finally:
            for t in workers:
                t.cancel()
            for c in clients:
                await c.close()
        if failure:
            return _Stop(_redact(str(failure[0]), key), refused=failure[0].refused)
        return None

    async def _ask_one(self, client: Any, prompt: str) -> Answer:
        """One example's answer. Each attempt (the client's retries and ours after a malformed
        answer) comes out of the one budget of ``retries``."""
        import httpx
        import openai

        body = self._request(prompt)
        path = "/chat/completions" if self.settings.api == "chat" else "/completions"
        left = self.settings.retries
        attempt = 0
        while True:
            try:
                # The client's plain ``post`` (its documented way to reach any endpoint) sends,
                # retries and times out exactly as ``create`` does, and hands back the answer
                # unparsed: the typed request and response models cost more CPU per request
                # than everything else here, and a malformed answer is ours to judge anyway.
                resp = await client.post(path, body=body, cast_to=httpx.Response,
                                         options={"max_retries": left})
            except openai.APIStatusError as exc:
                code = exc.status_code
                refused = code < 500 and code not in _RETRIED_4XX
                raise _Stop(f"HTTP {code}: {_one_line(exc.message)}", refused=refused) from None
            except openai.APIError as exc:  # connection error, timeout
                raise _Stop(f"{type(exc).__name__}: {_one_line(str(exc))}", refused=False) from None
            taken = int(resp.request.headers.get("x-stainless-retry-count") or 0)
            attempt += taken + 1
            left -= taken
            try:
                return self._answer(resp)
            except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
                reason = f"malformed answer ({type(exc).__name__}: {_one_line(str(exc))})"
                if left <= 0:
                    raise _Stop(reason, refused=False) from None
                log.info("%s; retrying", reason)
                left -= 1
                delay = min(_BACKOFF_FIRST_S * 2.0 ** (attempt - 1), _BACKOFF_MAX_S)
                await asyncio.sleep(delay * (1 - 0.25 * random.random()))

    def _answer(self, resp: Any) -> Answer:
        """The answer in a 200 response's body; ValueError, KeyError, … when it is malformed."""
        doc = json.loads(resp.content)
        choice = doc["choices"][0]
        text = choice["message"]["content"] if self.settings.api == "chat" else choice["text"]
        if text is None:
            text = ""  # e.g. a content filter: an empty answer is the model's outcome
        if not isinstance(text, str):
            raise TypeError(f"answer text is {type(text).__name__}, not a string")
        usage = doc.get("usage")
        if usage is not None and not isinstance(usage, dict):
            raise TypeError("usage is not an object")
        return Answer(text=text,  # raw: stop strings are cut when decoding, after the store
                      finish_reason=str(choice.get("finish_reason") or "unknown"),
                      input_tokens=_count(usage, "prompt_tokens"),
                      output_tokens=_count(usage, "completion_tokens"),
                      latency_s=resp.elapsed.total_seconds(),  # the attempt that answered
                      model=str(doc["model"]) if doc.get("model") else None,
                      system_fingerprint=str(doc["system_fingerprint"])
                      if doc.get("system_fingerprint") else None)

    def _predictions(self, ids: list[str], answers: dict[str, Answer], labels: Sequence[str],
                     from_store: set[str]) -> Predictions:
        """Decode the raw answers: cut at the stop strings, then (classification) match labels.
        The texts travel along too, so an invalid answer can be shown as the model wrote it."""
        got = [answers[i] for i in ids]
        texts = tuple(cut_at_stop(a.text, self.generation.stop) for a in got)
        ins = [a.input_tokens for a in got]
        outs = [a.output_tokens for a in got]
        if None in ins or None in outs:
            log.info("%s: the server reported no usage for some answers; token counts omitted",
                     self.role)
        served = _served(got)
        common: dict[str, Any] = {
            "input_tokens": None if None in ins else np.asarray(ins, dtype=np.int64),
            "output_tokens": None if None in outs else np.asarray(outs, dtype=np.int64),
            "finish_reasons": tuple(a.finish_reason for a in got),
            "latency_s": np.asarray([a.latency_s for a in got], dtype=np.float64),
            "served": served,
            "cached": np.asarray([i in from_store for i in ids], dtype=bool),
        }
        if labels:
            match = self._matcher(labels)
            return Predictions(ids=tuple(ids), labels=tuple(match(t) for t in texts),
                               outputs=texts, **common)
        return Predictions(ids=tuple(ids), outputs=texts, **common)

    def close(self) -> None:
        pass


def _served(answers: Sequence[Answer]) -> dict[str, Any]:
    """The served model and system fingerprint (the most common; every distinct one if several)."""
    out: dict[str, Any] = {}
    for key in ("model", "system_fingerprint"):
        counts = Counter(getattr(a, key) for a in answers if getattr(a, key))
        out[key] = counts.most_common(1)[0][0] if counts else None
        if len(counts) > 1:
            out.setdefault("distinct", {})[key] = sorted(counts)
    return out


def _count(usage: dict[str, Any] | None, key: str) -> int | None:
    if usage is None or usage.get(key) is None:
        return None
    return int(usage[key])


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS - 1] + "…"


def _redact(text: str, key: str) -> str:
    # A server may echo the key it refused ("Incorrect API key provided: sk-…").
    return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text


def _run_async(coro: Any) -> Any:
    """Run ``coro`` to completion from synchronous code, whether or not a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (a notebook): run on a fresh loop in a worker thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def build(spec: ModelSpec, role: str, options: Options) -> Model:
    """The ``type: openai`` factory (cheap: it checks the spec and connects to nothing)."""
    return OpenAICompatModel(spec, role, cache_dir=options.cache_dir)
