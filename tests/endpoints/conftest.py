"""Fixtures of the endpoint tests: real servers, no mocks of the model.

- ``fake_openai``: a small OpenAI-compatible server of our own (``fake_openai.py``) with fixed,
  chosen answers and chosen faults.
- ``tiny_lm``: a tiny GPT-2 causal LM built from its config (seeded) with a byte-level BPE
  tokenizer trained by ``tokenizers``, saved to a folder; ``transformers_server``: that folder
  served by ``transformers serve`` (one server per test session).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from endpoint_helpers import free_port  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
#: Seconds ``transformers serve`` may take to answer /v1/models (it needs ~12-30 s here).
SERVER_START_TIMEOUT_S = 120
CORPUS = ("the cat sat on the mat", "a dog ran in the park", "birds sing at dawn",
          "rain falls on the roof", "the sun rises in the east", "fish swim in the sea",
          "hello world", "distill the teacher into a student", "small models run fast")


@pytest.fixture
def fake_openai() -> Iterator[Callable[..., FakeOpenAI]]:
    """Start fake servers (``fake_openai(faults, api_key=…)``); each is stopped after the test."""
    started: list[FakeOpenAI] = []

    def start(*args: Any, **kwargs: Any) -> FakeOpenAI:
        server = FakeOpenAI(*args, **kwargs).__enter__()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository root (pyproject.toml), the current directory of the test."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'r'\n", "utf-8")
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def endpoint_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository root (pyproject.toml) for the suites of the endpoint tests."""
    root = tmp_path_factory.mktemp("endpoint-repo")
    (root / "pyproject.toml").write_text("[project]\nname = 'endpoint-tests'\n", "utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_lm(endpoint_repo: Path) -> Path:
    """A folder holding a tiny GPT-2 (2 layers, width 32, seeded) and its BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = endpoint_repo / "models" / "tiny-lm"
    folder.mkdir(parents=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(CORPUS) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    # A plain chat template, so that api: chat (the server) meets generation.chat (local).
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}assistant:{% endif %}")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(vocab_size=len(fast), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    model = GPT2LMHeadModel(config)
    model.generation_config = GenerationConfig(do_sample=False, bos_token_id=eos, eos_token_id=eos,
                                               pad_token_id=eos)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def transformers_server(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``transformers serve <tiny_lm> --device cpu`` on a free port; yields its ``/v1`` URL.

    Waits until ``/v1/models`` answers (failing at once if the process dies), and stops the
    server with SIGTERM by its pid at the end of the session.
    """
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        pytest.fail(f"{exe} not found: install transformers[serving] (the dev extra)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1",
           "HF_HOME": str(tmp_path_factory.mktemp("hf-home"))}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(exe), "serve", str(tiny_lm), "--host", "127.0.0.1",
                                 "--port", str(port), "--device", "cpu"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n"
                            + log_path.read_text("utf-8", "replace")[-3000:])
            try:
                _get_json(f"{url}/models")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not answer in {SERVER_START_TIMEOUT_S} s:\n"
                                + log_path.read_text("utf-8", "replace")[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
