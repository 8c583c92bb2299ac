"""A team whose teacher and student are endpoints or prediction files needs no torch.

Runs ``distill`` under a Python where torch, transformers (and what only they need) are not
installed: suites of prediction files and of an endpoint teacher gate as usual, and a
``type: transformers`` model is a one-line exit 2 that names the extra.

The interpreter: ``$DISTILL_NO_TORCH_PYTHON`` when set (``.ci/run`` makes a fresh venv and
``pip install .`` without extras into it), else a venv made here in a second whose
site-packages links every distribution of this one but torch, transformers, safetensors,
accelerate and their companions — a real interpreter on which ``import torch`` fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from endpoint_helpers import write_suite
from fake_openai import answer_for

TINY = Path(__file__).resolve().parents[1] / "data" / "tinyrepo"
#: Distributions of the ``transformers`` extra, and what only they pull in.
HEAVY = ("torch", "functorch", "torchgen", "triton", "nvidia", "transformers", "safetensors",
         "accelerate")


def _heavy(name: str) -> bool:
    base = name.lower().replace("-", "_")
    return any(base == h or base.startswith((h + "_", h + "-", h + ".")) for h in HEAVY)


@pytest.fixture(scope="module")
def no_torch_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("DISTILL_NO_TORCH_PYTHON")
    if given:
        return Path(given)
    venv = tmp_path_factory.mktemp("no-torch") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    target = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    source = Path(sysconfig.get_paths()["purelib"])
    for entry in source.iterdir():
        if not _heavy(entry.name) and entry.name != "__pycache__":
            (target / entry.name).symlink_to(entry)
    return python


def _distill(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_EVALUATE_OFFLINE="1",
               HF_HOME=str(cwd / ".hf"))
    return subprocess.run([str(python), "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_interpreter_has_no_torch(no_torch_python):
    probe = subprocess.run([str(no_torch_python), "-c",
                            "import importlib.util as u; print([m for m in ('torch', 'transformers')"
                            " if u.find_spec(m)]); import harness, openai, numpy"],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_prediction_files_and_an_endpoint_teacher_gate_without_torch(no_torch_python, tmp_path,
                                                                      fake_openai):
    repo = tmp_path / "tiny"
    shutil.copytree(TINY, repo)
    shutil.copyfile(repo / "data" / "teacher.jsonl", repo / "data" / "student.jsonl")
    run = _distill(no_torch_python, "run", "suites/tiny.yaml", "--report", "r.json", cwd=repo)
    assert run.returncode == 0, run.stderr
    assert json.loads((repo / "r.json").read_text("utf-8"))["verdict"] == "pass"

    server = fake_openai()
    prompts = [f"say item {i}" for i in range(6)]
    write_suite(repo, "served", rows=[{"id": f"s{i}", "text": p} for i, p in enumerate(prompts)],
                teacher={"type": "openai", "base_url": server.base_url, "model": "fake-teacher",
                         "generation": {"max_new_tokens": 8}},
                student={"type": "predictions", "path": "../data/served-student.jsonl"})
    (repo / "data" / "served-student.jsonl").write_text("".join(
        json.dumps({"id": f"s{i}", "output": answer_for(p)}) + "\n" for i, p in enumerate(prompts)),
        "utf-8")
    run = _distill(no_torch_python, "run", "suites/served.yaml", cwd=repo)
    assert run.returncode == 0, run.stderr + run.stdout
    assert sum(server.requests.values()) == len(prompts)


def test_a_transformers_model_without_the_extra_is_one_line_naming_it(no_torch_python, tmp_path):
    repo = tmp_path / "tiny"
    shutil.copytree(TINY, repo)
    (repo / "models" / "m").mkdir(parents=True)
    (repo / "models" / "m" / "config.json").write_text("{}", "utf-8")
    suite = repo / "suites" / "tiny.yaml"
    suite.write_text(suite.read_text("utf-8").replace(
        "teacher:\n  type: predictions\n  path: ../data/teacher.jsonl",
        "teacher:\n  type: transformers\n  path: ../models/m"), "utf-8")
    run = _distill(no_torch_python, "run", "suites/tiny.yaml", cwd=repo)
    assert run.returncode == 2, run.stderr + run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "teacher.type" in lines[0] and "pip install 'distill-harness[transformers]'" in lines[0]
    assert "torch" in lines[0] and "Traceback" not in run.stderr
