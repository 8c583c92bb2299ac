"""Every script under ``benchmarks/`` runs in quick mode, so a refactor that breaks one fails CI.

What each script promises (read this before adding one):

- it accepts ``--quick`` and then finishes in seconds (under ~20 s on an idle 2-core machine);
- it prints its target figures: at least one line of its output names a target (contains
  "target"), with the figure measured against it;
- in quick mode it exits 0 whether or not a target is met: the figures are printed, not
  judged (a full run judges them). A non-zero exit in quick mode means the script broke;
- it needs no network (it runs here with the Hugging Face offline switches and an empty
  ``HF_HOME``) and nothing built beforehand: a script that needs a built demo
  (``examples/*/build``) it cannot find builds a tiny stand-in in quick mode, says so in its
  output, and still exits 0;
- it leaves no ``.distill-bench-*`` folder behind in the repository.

Nothing is skipped: every ``benchmarks/*.py`` (but ``_``-prefixed helpers) is collected by the
glob, and a script without ``--quick`` fails with a message that says what to add.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
#: Generous against "seconds": the CI machine and this one are shared.
TIMEOUT_S = 240


def test_there_are_benchmarks() -> None:
    assert BENCHMARKS, "no script under benchmarks/"


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_benchmark_runs_in_quick_mode_and_prints_its_targets(script: Path, tmp_path: Path) -> None:
    source = script.read_text("utf-8")
    assert "--quick" in source, (
        f"benchmarks/{script.name} does not accept --quick: every script under benchmarks/ must "
        "(a run of seconds that prints its targets and exits 0; see this test's docstring)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_EVALUATE_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TOKENIZERS_PARALLELISM="false",
               PYTHONDONTWRITEBYTECODE="1")
    leftovers_before = set(ROOT.glob(".distill-bench-*"))
    try:
        run = subprocess.run([sys.executable, str(script), "--quick"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"benchmarks/{script.name} --quick ran past {TIMEOUT_S}s; its output:\n"
                    f"{out[-3000:]}")
    output = run.stdout + run.stderr
    assert run.returncode == 0, (
        f"benchmarks/{script.name} --quick exited {run.returncode}:\n{output[-4000:]}")
    assert re.search(r"target", run.stdout, re.IGNORECASE), (
        f"benchmarks/{script.name} --quick printed no target figures:\n{run.stdout[-3000:]}")
    assert set(ROOT.glob(".distill-bench-*")) <= leftovers_before, "a bench folder was left behind"
