"""What the two ``type: transformers`` adapters share: a model folder (local or from the
Hugging Face hub) and its files, the fingerprint, facts, device and dtype choice, safe
loading, batched forward passes and mean-pooled embeddings.

:class:`HFModel` is the base of the classifier (:mod:`harness.models.transformers`) and of the
generator (:mod:`harness.models.transformers_generation`), so neither adapter imports the
other. torch and transformers are imported inside methods only: importing this module,
fingerprinting a model and reading its facts stay torch-free, so a run whose outputs are all
cached never pays for torch.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import struct
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ModelError
from harness.models.base import Model, ModelFacts, Progress
from harness.paths import file_sha256

if TYPE_CHECKING:
    from harness.spec_types import ModelSpec

#: Files that determine a tokenizer's output, whichever of them a model folder has.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
CONFIG_FILES = ("config.json",)
DEVICES = "auto | cpu | cuda | cuda:N | mps"
DTYPES = ("auto", "float32", "bfloat16", "float16")

_TRUE = {"1", "on", "yes", "true"}
# Seconds to wait for the hub before falling back to the local cache: a CI job without
# network access must fail in seconds, not hang on the default timeouts.
_HUB_TIMEOUT_S = 10.0

# sha256 of a file, by (resolved path, size, mtime_ns): fingerprinting the same 90 MB weights
# twice in one process reads them once.

# Tokenized texts, by (tokenizer file hashes, max_length, texts): a student cut from its
# teacher shares the teacher's tokenizer, so the eval set is tokenized once per run, not twice.
_ENCODINGS: OrderedDict[tuple[str, int, int, int], Any] = OrderedDict()
_ENCODINGS_KEPT = 4


def safetensors_param_count(path: Path) -> int:
    """Number of parameters stored in a safetensors file, read from its header alone."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ModelError(f"{path} is not a safetensors file (truncated header)")
        (size,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(f.read(size))
        except ValueError as exc:
            raise ModelError(f"{path} is not a safetensors file ({exc})") from None
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        total += int(np.prod(entry["shape"], dtype=np.int64))
    return total


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def hub_offline() -> bool:
    """Whether the hub must not be contacted (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


class HFModel(Model):
    """A ``type: transformers`` model: a transformers head (:meth:`_auto_class`) plus its
    tokenizer, from a folder holding safetensors weights.

    Construction reads nothing. :meth:`fingerprint` and :meth:`facts` read files but never
    import torch; the weights load on the first :meth:`predict` or :meth:`embed`.
    """

    counts_params = True

    def __init__(
        self,
        spec: ModelSpec,
        role: str,
        *,
        allow_remote_code: bool = False,
        device_override: str | None = None,
        flag_prefix: str = "--distill-",
    ):
        super().__init__(spec, role)
        # Messages name the flags as the front end in use spells them (Options.flag_prefix).
        self._flag_prefix = flag_prefix
        if spec.trust_remote_code and not allow_remote_code:
            raise ModelError(
                "trust_remote_code: true runs Python code shipped with the model; it also"
                f" needs {flag_prefix}allow-remote-code on the command line",
                file=spec.source,
                field=f"{spec.field}.trust_remote_code",
            )
        if spec.dtype not in DTYPES:
            raise ModelError(
                f"unknown dtype {spec.dtype!r}; expected one of {', '.join(DTYPES)}",
                file=spec.source,
                field=f"{spec.field}.dtype",
            )
        self.trust_remote_code = bool(spec.trust_remote_code and allow_remote_code)
        self.device_request = device_override or spec.device or "auto"
        self._folder: Path | None = None
        self._fingerprint: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._label_mapping: str | None = None

    # -- errors -------------------------------------------------------------------------

    def _error(self, message: str, field: str | None = None) -> ModelError:
        return ModelError(message, file=self.spec.source, field=field or f"{self.spec.field}.path")

    # -- files (no torch) -------------------------------------------------------------------

    @property
    def hub_id(self) -> str | None:
        """The hub id, for a model named by one rather than by a local folder."""
        return None if self.spec.local_path is not None else self.spec.path

    def folder(self) -> Path:
        """The local folder holding the model's files, resolving a hub id through the cache.

        Fails fast with a :class:`ModelError` that says what to do when the folder is missing,
        or when a hub id cannot be resolved (offline and not cached, or the hub unreachable).
        """
        if self._folder is not None:
            return self._folder
        if self.spec.local_path is not None:
            folder = Path(self.spec.local_path)
            if not folder.is_dir():
                raise self._error(
                    f"model folder {folder} does not exist; save the model there"
                    " (save_pretrained) or fix the path"
                )
        elif self.spec.path:
            folder = self._download(self.spec.path)
        else:
            raise self._error("a transformers model needs a path (local folder or hub id)")
        self._folder = folder
        return folder

    def _download(self, repo_id: str) -> Path:
        from huggingface_hub import snapshot_download

        offline = hub_offline()
        patterns = ["*.safetensors", "*.safetensors.index.json", *CONFIG_FILES, *TOKENIZER_FILES]
        if self.spec.allow_pickle:
            patterns += ["*.bin", "*.bin.index.json"]
        if self.trust_remote_code:
            patterns += ["*.py"]
        revision = self.spec.revision or "main"
        resolved = self.spec.revision
        local_only = offline
        probe_error: Exception | None = None
        if not offline:
            # snapshot_download's first request has no timeout; probe with one, so that a
            # firewalled CI runner falls back to the local cache in seconds instead of hanging.
            from huggingface_hub import HfApi

            try:
                sha = HfApi().model_info(repo_id, revision=resolved, timeout=_HUB_TIMEOUT_S).sha
                resolved = sha or resolved
            except Exception as exc:  # unreachable, unknown, gated: the cache may still serve
                local_only, probe_error = True, exc
        try:
            path = snapshot_download(
                repo_id,
                revision=resolved,
                allow_patterns=patterns,
                local_files_only=local_only,
                etag_timeout=_HUB_TIMEOUT_S,
            )
        except Exception as exc:  # hub errors have many types; each means "not available"
            if offline:
                how = (
                    f"HF_HUB_OFFLINE=1 and {repo_id}@{revision} is not in the local hub cache."
                    f" Fetch it once where the hub is reachable (hf download {repo_id}"
                    f" --revision {revision}) and keep HF_HOME, or save the model to a folder"
                    " in the repository and point path at it"
                )
            else:
                how = (
                    f"could not fetch {repo_id}@{revision} from the hub and it is not in the"
                    " local hub cache. Check the id and revision and the network, or save the"
                    " model to a folder in the repository and point path at it"
                )
            cause = probe_error or exc
            raise self._error(f"{how} ({type(cause).__name__}: {cause})") from None
        return Path(str(path))

    def _weight_files(self, folder: Path) -> list[Path]:
        safetensors = sorted(folder.glob("*.safetensors"))
        pickles = sorted(folder.glob("*.bin"))
        if safetensors:
            return safetensors if not self.spec.allow_pickle else safetensors + pickles
        if pickles and not self.spec.allow_pickle:
            raise self._error(
                f"{folder} holds only pickle weights ({', '.join(p.name for p in pickles)}),"
                " which can run code when loaded. Convert them to safetensors"
                " (model.save_pretrained(folder) writes model.safetensors) or set"
                " allow_pickle: true in the model spec if you trust the file",
                field=f"{self.spec.field}.allow_pickle",
            )
        if pickles:
            return pickles
        raise self._error(f"{folder} holds no weights (*.safetensors)")

    def _files(self) -> list[Path]:
        """Every file that determines the outputs: weights, config, tokenizer (and code)."""
        folder = self.folder()
        files = self._weight_files(folder)
        files += sorted(folder.glob("*.index.json"))
        for name in (*CONFIG_FILES, *TOKENIZER_FILES):
            if (folder / name).is_file():
                files.append(folder / name)
        if not (folder / "config.json").is_file():
            raise self._error(f"{folder} has no config.json")
        if self.trust_remote_code:
            files += sorted(folder.glob("*.py"))
        return files

    def fingerprint(self) -> str:
        """sha256 over the weight, config and tokenizer file hashes, max_length and dtype.

        A hub model also pins its id and revision. Never imports torch.
        """
        if self._fingerprint is None:
            blob = json.dumps(self._fingerprint_parts(), sort_keys=True,
                              separators=(",", ":")).encode()
            self._fingerprint = hashlib.sha256(blob).hexdigest()
        return self._fingerprint

    def _fingerprint_parts(self) -> dict[str, Any]:
        """What :meth:`fingerprint` hashes (a subclass adds what else changes its outputs)."""
        folder = self.folder()
        parts: dict[str, Any] = {
            "type": "transformers",
            "files": {str(p.relative_to(folder)): file_sha256(p) for p in self._files()},
            "max_length": self.spec.max_length,
            "dtype": self.spec.dtype,
        }
        if self.hub_id is not None:
            parts["hub"] = {"id": self.hub_id, "revision": self.spec.revision}
        return parts

    def facts(self) -> ModelFacts:
        """Parameters (from the safetensors headers, or the loaded model) and bytes on disk."""
        files = self._files()
        weights = [p for p in files if p.suffix == ".safetensors"]
        params: int | None = None
        if weights:
            params = sum(safetensors_param_count(p) for p in weights)
        elif self._model is not None:
            params = int(sum(p.numel() for p in self._model.parameters()))
        extra: dict[str, object] = {}
        if self._label_mapping is not None:
            extra["label_mapping"] = self._label_mapping
        if self._device is not None:
            extra["device"] = str(self._device)
        return ModelFacts(params=params, bytes=sum(p.stat().st_size for p in files), extra=extra)

    # -- torch ------------------------------------------------------------------------------

    def _resolve_device(self, torch: Any) -> Any:
        request = self.device_request
        field = f"{self.spec.field}.device"
        if request == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        if request == "cpu":
            return torch.device("cpu")
        if request == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise self._error("device mps was asked for but is not available", field)
            return torch.device("mps")
        m = re.fullmatch(r"cuda(?::(\d+))?", request)
        if m is None:
            raise self._error(f"unknown device {request!r}; expected {DEVICES}", field)
        if not torch.cuda.is_available():
            raise self._error(
                f"device {request} was asked for but CUDA is not available"
                f" (use device: auto or cpu, or {self._flag_prefix}device cpu)",
                field,
            )
        if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
            raise self._error(
                f"device {request} was asked for but only {torch.cuda.device_count()} CUDA device(s) exist",
                field,
            )
        return torch.device(request)

    def _resolve_dtype(self, torch: Any, device: Any, config_dtype: object) -> Any:
        if self.spec.dtype != "auto":
            return getattr(torch, self.spec.dtype)
        # auto: full precision on CPU; on an accelerator, the checkpoint's own half type.
        stored = str(config_dtype).removeprefix("torch.")  # a str or a torch.dtype
        if device.type != "cpu" and stored in ("float16", "bfloat16"):
            return getattr(torch, stored)
        return torch.float32

    def _load(self) -> None:
        if self._model is not None:
            return
        folder = self.folder()
        files = self._files()  # refuses pickle-only folders before transformers sees them
        has_safetensors = any(p.suffix == ".safetensors" for p in files)
        import torch
        import transformers
        from transformers.utils import logging as hf_logging

        device = self._resolve_device(torch)
        common: dict[str, Any] = {
            "local_files_only": True,
            "trust_remote_code": self.trust_remote_code,
        }
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bars in CI logs
        try:
            config = transformers.AutoConfig.from_pretrained(str(folder), **common)
            dtype = self._resolve_dtype(torch, device, getattr(config, "dtype", None))
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), **common)
            model = self._auto_class(transformers, config).from_pretrained(
                str(folder),
                config=config,
                dtype=dtype,
                use_safetensors=True if has_safetensors else None,
                **self._load_options(),
                **common,
            )
        except ModelError:
            raise
        except Exception as exc:
            raise self._error(f"cannot load the model from {folder}: {type(exc).__name__}: {exc}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if getattr(model, "hf_device_map", None):
            device = model.device  # placed by accelerate (device_map); inputs go to its first device
        else:
            model.to(device)
        model.eval()
        self._model, self._tokenizer, self._device = model, tokenizer, device

    def _auto_class(self, transformers: Any, config: Any) -> Any:
        """The ``AutoModelFor…`` class that loads this adapter's head."""
        raise NotImplementedError

    def _load_options(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` keywords (the generation adapter's ``device_map``)."""
        return {}

    def _forward(self, enc: dict[str, Any], hidden: bool) -> Any:
        """One forward pass over a padded batch (a seq2seq generator runs its encoder only)."""
        return self._model(**enc, output_hidden_states=hidden)

    def _max_length(self) -> int:
        """spec.max_length, capped at what the model's positions and tokenizer allow."""
        limits = [int(self.spec.max_length)]
        positions = getattr(self._model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        declared = getattr(self._tokenizer, "model_max_length", None)
        if isinstance(declared, int) and 0 < declared < 1_000_000:  # unset means ~1e30
            limits.append(declared)
        return min(limits)

    def _batches(self, texts: list[str], progress: Progress | None, hidden: bool = False) -> Any:
        """Yield (positions, attention mask, model outputs) per length-sorted batch of ``texts``."""
        import torch

        if not texts:  # transformers 5 tokenizers fail on an empty batch
            return
        tok = self._tokenizer
        max_length = self._max_length()
        # One tokenizer pass, truncated and unpadded: its lengths order the batches and its
        # ids are padded batch by batch (tokenizing every batch again cost a second pass).
        encoded = self._encode(texts, max_length)
        fields = list(encoded.keys())
        lengths = [len(ids) for ids in encoded["input_ids"]]
        # Longest first, so padding within a batch is small and a batch that does not fit
        # in memory shows up at once; stable, so equal lengths keep file order.
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        size = max(1, int(self.spec.batch_size))
        done = 0
        for start in range(0, len(order), size):
            pos = order[start : start + size]
            enc = tok.pad(
                {k: [encoded[k][i] for i in pos] for k in fields},
                padding=True,
                return_tensors="pt",
            )
            enc = {k: v.to(self._device) for k, v in enc.items()}
            with torch.inference_mode():
                out = self._forward(enc, hidden)
            yield pos, enc["attention_mask"], out
            done += len(pos)
            if progress is not None:
                progress(done, len(texts))

    def _encode(self, texts: list[str], max_length: int) -> Any:
        """Truncated, unpadded encodings of ``texts`` (shared between models with one tokenizer)."""
        folder = self.folder()
        tok_files = [folder / n for n in TOKENIZER_FILES if (folder / n).is_file()]
        tok_key = hashlib.sha256("|".join(f"{p.name}:{file_sha256(p)}" for p in tok_files)
                                 .encode()).hexdigest()
        key = (tok_key, max_length, len(texts), hash(tuple(texts)))
        if key in _ENCODINGS:
            _ENCODINGS.move_to_end(key)
            return _ENCODINGS[key]
        encoded = self._tokenizer(texts, truncation=True, max_length=max_length)
        _ENCODINGS[key] = encoded
        while len(_ENCODINGS) > _ENCODINGS_KEPT:
            _ENCODINGS.popitem(last=False)
        return encoded

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states (padding excluded), float32, one row per text."""
        self._load()
        texts = [str(t) for t in texts]
        rows: np.ndarray | None = None
        for pos, mask, out in self._batches(texts, None, hidden=True):
            hidden = out.hidden_states[-1].float()
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            pooled_np = pooled.cpu().numpy().astype(np.float32)
            if rows is None:
                rows = np.zeros((len(texts), pooled_np.shape[1]), dtype=np.float32)
            rows[pos] = pooled_np
        if rows is None:
            hidden_size = int(getattr(self._model.config, "hidden_size", 0))
            rows = np.zeros((0, hidden_size), dtype=np.float32)
        return rows

    def close(self) -> None:
        """Drop the weights and tokenizer (and the accelerator memory they held)."""
        device = self._device
        self._model = None
        self._tokenizer = None
        # On the CPU, dropping the references frees the weights (a loaded model holds no
        # reference cycles); a full gc.collect() there cost ~0.2 s per model, in every run.
        # An accelerator's cached blocks go back only once nothing can still refer to them.
        if device is not None and getattr(device, "type", "cpu") != "cpu":
            gc.collect()
            if device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
