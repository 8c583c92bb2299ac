"""Causal-LM and seq2seq generators (``type: transformers`` in a ``task: generation`` suite).

The files, fingerprint, device and dtype choice, safe loading and facts are shared with the
classification adapter (:class:`~harness.models._hf.HFModel`); this
module adds what differs for generation: the head (``AutoModelForCausalLM`` or
``AutoModelForSeq2SeqLM``, chosen from ``config.json``), prompts (chat template), batched
generation, stop strings, finish reasons and token usage. torch and transformers are imported
inside methods only.

What one example's numbers mean:

- ``input_tokens``: the prompt's tokens as the model saw them (after the chat template and
  truncation to ``max_length``), padding not counted.
- ``output_tokens``: the generated tokens up to and including the one that ended the answer:
  the EOS token, or the token that completed a ``stop`` string; all ``max_new_tokens`` of them
  when neither came first.
- ``finish_reason``: ``stop`` when EOS or a stop string ended the answer, ``length`` when
  ``max_new_tokens`` was reached first.

Greedy decoding (``temperature: 0``) is deterministic and independent of the batch size: a
left-padded batch gives each prompt the outputs it gets alone. Sampled runs
(``temperature > 0``) seed torch with ``seed + batch index`` before each batch; batches are
the length-sorted prompts cut into ``batch_size`` runs, so a sampled run is reproducible for
the same data, settings and batch size, and changes with the batch size.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.models._hf import TOKENIZER_FILES, HFModel
from harness.models.base import ModelFacts, Predictions, Progress
from harness.spec_types import GenerationSettings

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.spec_types import ModelSpec

#: Files besides weights, config and tokenizer that change what a generator writes.
GENERATION_FILES = ("generation_config.json", "chat_template.jinja", "chat_template.json")

#: Heads that are not generators, by the suffix of their architecture name.
_NOT_GENERATORS = {
    "ForSequenceClassification": "a sequence-classification",
    "ForTokenClassification": "a token-classification",
    "ForQuestionAnswering": "an extractive question-answering",
    "ForMultipleChoice": "a multiple-choice",
    "ForMaskedLM": "a masked-language",
}

#: generation_config.json entries kept: the token ids that say how a sequence starts and
#: ends. Everything else there (num_beams, top_k, repetition_penalty, min_length, …) would
#: quietly change the outputs behind the spec's back; the spec's ``generation:`` decides.
_STRUCTURAL = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id",
               "forced_bos_token_id")


class GenerationModel(HFModel):
    """A local or hub causal LM / seq2seq model that writes one answer per prompt.

    Cheap to build; :meth:`fingerprint` and :meth:`facts` read files without torch; the
    weights load on the first :meth:`predict` (or :meth:`embed`).
    """

    counts_params = True
    reports_usage = True
    timeable = True

    def __init__(
        self,
        spec: ModelSpec,
        role: str,
        *,
        allow_remote_code: bool = False,
        device_override: str | None = None,
        flag_prefix: str = "--distill-",
    ):
        super().__init__(spec, role, allow_remote_code=allow_remote_code,
                         device_override=device_override, flag_prefix=flag_prefix)
        self.settings: GenerationSettings = spec.generation or GenerationSettings()
        self._encoder_decoder = False
        self._eos: tuple[int, ...] = ()
        self._truncated = 0

    # -- files (no torch) -------------------------------------------------------------------

    def _files(self) -> list[Path]:
        files = super()._files()
        folder = self.folder()
        if not any((folder / name).is_file() for name in TOKENIZER_FILES):
            raise self._error(
                f"{folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES[:3])}, …);"
                " save it next to the weights with tokenizer.save_pretrained(folder)")
        files += [folder / name for name in GENERATION_FILES if (folder / name).is_file()]
        return files

    def _config_json(self) -> dict[str, Any]:
        path = self.folder() / "config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise self._error(f"cannot read {path}: {exc}") from None
        if not isinstance(config, dict):
            raise self._error(f"{path} is not a JSON object")
        return config

    def _check_head(self) -> None:
        """A classifier (or any non-generating head) named in config.json is refused here."""
        path = self.folder() / "config.json"
        for arch in self._config_json().get("architectures") or ():
            for suffix, kind in _NOT_GENERATORS.items():
                if str(arch).endswith(suffix):
                    raise self._error(
                        f"{path}: architectures: {arch} is {kind} model; a generation suite"
                        " needs a causal LM or seq2seq model (…ForCausalLM, …LMHeadModel,"
                        " …ForConditionalGeneration)")

    def chat_template(self) -> str | None:
        """The tokenizer's chat template text as the model folder stores it, or None."""
        folder = self.folder()
        jinja = folder / "chat_template.jinja"
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8")
        for name in ("chat_template.json", "tokenizer_config.json"):
            path = folder / name
            if not path.is_file():
                continue
            try:
                template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            except (OSError, ValueError, AttributeError):
                continue
            if template:
                return template if isinstance(template, str) else json.dumps(template,
                                                                              sort_keys=True)
        return None

    def _fingerprint_parts(self) -> dict[str, Any]:
        """The classification parts plus every setting that changes a generated answer."""
        self._check_head()
        parts = super()._fingerprint_parts()
        template = self.chat_template() if self.settings.chat else None
        if self.settings.chat and template is None:
            raise self._error(
                f"generation.chat is true but {self.folder()} has no chat template"
                " (chat_template.jinja, or chat_template in tokenizer_config.json)",
                field=f"{self.spec.field}.generation.chat")
        parts.update({
            "task": "generation",
            "generation": self.settings.to_dict(),
            "prompt": self.spec.prompt,
            "chat_template": (hashlib.sha256(template.encode()).hexdigest()
                              if template is not None else None),
        })
        return parts

    # -- torch ------------------------------------------------------------------------------

    def _auto_class(self, transformers: Any, config: Any) -> Any:
        self._encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
        if self._encoder_decoder:
            return transformers.AutoModelForSeq2SeqLM
        return transformers.AutoModelForCausalLM

    def _load_options(self) -> dict[str, Any]:
        return {"device_map": self.spec.device_map} if self.spec.device_map else {}

    def _load(self) -> None:
        if self._model is None:
            self._check_head()
            super()._load()
            self._prepare()

    def _prepare(self) -> None:
        """Padding and truncation sides, a pad token, and the spec's generation config alone."""
        from transformers import GenerationConfig

        model, tok = self._model, self._tokenizer
        if self._encoder_decoder:
            # The encoder reads the whole prompt: pads after it keep absolute positions
            # (BART's) where they are when the prompt runs alone.
            tok.padding_side = "right"
        else:
            # A decoder-only model continues the last token of the row: pads go on the left,
            # and an over-long prompt loses its beginning, never the end it continues from.
            tok.padding_side = "left"
            tok.truncation_side = "left"
        own = model.generation_config
        eos = own.eos_token_id if own.eos_token_id is not None else tok.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or ())
        if not eos_ids:
            raise self._error(f"{self.folder()} names no EOS token (eos_token_id in"
                              " generation_config.json or the tokenizer's eos_token)")
        if tok.pad_token_id is None:
            tok.pad_token = tok.convert_ids_to_tokens(eos_ids[0])
        kept = {k: getattr(own, k, None) for k in _STRUCTURAL}
        kept = {k: v for k, v in kept.items() if v is not None}
        kept["eos_token_id"] = eos_ids
        kept["pad_token_id"] = tok.pad_token_id
        model.generation_config = GenerationConfig(**kept)
        self._eos = tuple(int(i) for i in eos_ids)

    def _prompt_limit(self) -> int:
        """Most prompt tokens: max_length, and room for the answer in a causal LM's positions."""
        limit = self._max_length()
        positions = getattr(self._model.config, "max_position_embeddings", None)
        if not self._encoder_decoder and isinstance(positions, int) and positions > 0:
            limit = min(limit, positions - self.settings.max_new_tokens)
            if limit < 1:
                raise self._error(
                    f"max_new_tokens {self.settings.max_new_tokens} leaves no room for a prompt"
                    f" in the model's {positions} positions",
                    field=f"{self.spec.field}.generation.max_new_tokens")
        return limit

    def prompts(self, texts: Sequence[str]) -> list[str]:
        """The text each prompt becomes: itself, or the chat template applied to it."""
        s = self.settings
        if not s.chat:
            return list(texts)
        self._load()
        tok = self._tokenizer
        if not getattr(tok, "chat_template", None):
            raise self._error(f"generation.chat is true but {self.folder()} has no chat template",
                              field=f"{self.spec.field}.generation.chat")
        head = [{"role": "system", "content": s.system}] if s.system else []
        return [tok.apply_chat_template([*head, {"role": "user", "content": t}], tokenize=False,
                                        add_generation_prompt=True) for t in texts]

    def _generate_kwargs(self) -> dict[str, Any]:
        s = self.settings
        sampling = s.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_new_tokens,
            "do_sample": sampling,
            "num_beams": 1,
            "pad_token_id": self._tokenizer.pad_token_id,
            "eos_token_id": list(self._eos),
        }
        if sampling:
            # temperature and top_p only, as an OpenAI-compatible server samples: no top-k.
            kwargs.update(temperature=s.temperature, top_p=1.0 if s.top_p is None else s.top_p,
                          top_k=0)
        return kwargs

    def _stop_criteria(self, start: int) -> Any:
        """Stop a row once its answer (tokens from ``start`` on) holds a stop string.

        Not transformers' ``stop_strings``: that one also matches across the end of the
        prompt, so a prompt ending in "." stops a ".." answer after one token. This one reads
        only the answer, with the same rule that cuts it afterwards.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tok, stop_at = self._tokenizer, self._stop_at

        class _AnswerHoldsStop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                texts = tok.batch_decode(input_ids[:, start:], skip_special_tokens=True)
                return torch.tensor([stop_at(t) is not None for t in texts],
                                    dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([_AnswerHoldsStop()])

    def predict(self, data: Dataset, labels: Sequence[str], progress: Progress | None = None
                ) -> Predictions:
        """One answer per example (suite order), with token usage and finish reasons."""
        import torch

        self._load()
        texts = self.prompts(data.texts())
        n = len(texts)
        outputs: list[str] = [""] * n
        reasons: list[str] = ["length"] * n
        n_in = np.zeros(n, dtype=np.int64)
        n_out = np.zeros(n, dtype=np.int64)
        if n == 0:  # transformers 5 tokenizers fail on an empty batch
            return Predictions(ids=tuple(data.ids), outputs=(), input_tokens=n_in,
                               output_tokens=n_out, finish_reasons=())
        tok, model = self._tokenizer, self._model
        limit = self._prompt_limit()
        encoded = tok(texts, truncation=True, max_length=limit,
                      add_special_tokens=not self.settings.chat)  # a chat template has its own
        ids = encoded["input_ids"]
        lengths = [len(row) for row in ids]
        n_in[:] = lengths
        # Only a prompt that fills the limit can have been cut; count those few exactly.
        full = [texts[i] for i, k in enumerate(lengths) if k >= limit]
        self._truncated = sum(len(r) > limit for r in tok(
            full, add_special_tokens=not self.settings.chat)["input_ids"]) if full else 0
        # Longest first, so padding within a batch is small and a batch too big for memory
        # fails at once; stable, so equal lengths keep suite order.
        order = sorted(range(n), key=lambda i: -lengths[i])
        size = max(1, int(self.spec.batch_size))
        kwargs = self._generate_kwargs()
        eos = torch.tensor(self._eos, device=self._device)
        sampling = self.settings.temperature > 0
        fields = [k for k in encoded.keys() if k in ("input_ids", "attention_mask")]
        done = 0
        for b, start in enumerate(range(0, n, size)):
            pos = order[start : start + size]
            batch = tok.pad({k: [encoded[k][i] for i in pos] for k in fields}, padding=True,
                            return_tensors="pt")
            batch = {k: v.to(self._device) for k, v in batch.items()}
            if sampling:
                torch.manual_seed(self.settings.seed + b)
            # A decoder-only model returns prompt + answer; a seq2seq one the decoder start
            # token + answer.
            skip = 1 if self._encoder_decoder else batch["input_ids"].shape[1]
            stops = {"stopping_criteria": self._stop_criteria(skip)} if self.settings.stop else {}
            with torch.inference_mode():
                out = model.generate(**batch, **kwargs, **stops)
            new = out[:, skip:]
            is_eos = torch.isin(new, eos)
            ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), -1).tolist()
            rows = [row if end < 0 else row[:end] for row, end in zip(new.tolist(), ends, strict=True)]
            answers = tok.batch_decode(rows, skip_special_tokens=True)
            for i, row, end, text in zip(pos, rows, ends, answers, strict=True):
                outputs[i], n_out[i], reasons[i] = self._finish(row, end, text)
            done += len(pos)
            if progress is not None:
                progress(done, n)
        return Predictions(ids=tuple(data.ids), outputs=tuple(outputs), input_tokens=n_in,
                           output_tokens=n_out, finish_reasons=tuple(reasons))

    def _finish(self, tokens: list[int], eos_at: int, text: str) -> tuple[str, int, str]:
        """(answer, tokens counted, finish reason) of one row: ``tokens`` before the first EOS
        (at ``eos_at``, -1 for none), and their ``text``."""
        cut = self._stop_at(text)
        if cut is not None:
            return text[:cut], self._tokens_to_stop(tokens), "stop"
        if eos_at >= 0:
            return text, eos_at + 1, "stop"
        return text, len(tokens), "length" if len(tokens) >= self.settings.max_new_tokens else "stop"

    def _stop_at(self, text: str) -> int | None:
        """Where the first stop string starts in ``text``, or None."""
        hits = [k for k in (text.find(s) for s in self.settings.stop if s) if k >= 0]
        return min(hits) if hits else None

    def _tokens_to_stop(self, tokens: list[int]) -> int:
        """The fewest leading tokens whose text already holds a stop string (binary search)."""
        lo, hi = 1, len(tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._stop_at(self._tokenizer.decode(tokens[:mid], skip_special_tokens=True)) is None:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _encode(self, texts: list[str], max_length: int) -> Any:
        # Not the classification adapter's shared encodings: this tokenizer truncates on the
        # left, so its encodings must not be served to a classifier with the same files.
        return self._tokenizer(texts, truncation=True, max_length=max_length)

    def _forward(self, enc: dict[str, Any], hidden: bool) -> Any:
        """Hidden states for :meth:`embed`: a seq2seq model's encoder, a causal LM's decoder."""
        if self._encoder_decoder:
            return self._model.get_encoder()(**enc, output_hidden_states=hidden)
        extra: dict[str, Any] = {}
        if "position_ids" in inspect.signature(self._model.forward).parameters:
            # Left padding shifts positions unless they are given from the mask.
            extra["position_ids"] = (enc["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)
        return self._model(**enc, **extra, output_hidden_states=hidden)

    def facts(self) -> ModelFacts:
        """The classification adapter's facts, plus how many prompts were cut to fit."""
        facts = super().facts()
        if self._model is not None:
            facts.extra["architecture"] = "seq2seq" if self._encoder_decoder else "causal"
            facts.extra["truncated_prompts"] = int(self._truncated)
        return facts

    def close(self) -> None:
        """Drop the weights and tokenizer (and the accelerator memory they held)."""
        super().close()
        self._eos = ()
