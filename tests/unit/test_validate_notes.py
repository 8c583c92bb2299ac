"""``distill validate`` prints what loading a rubric notes, as a run does (``note: …``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli

NOTE = "the printed interval is not the one the verdict uses"


def validate(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert cli.main(["validate", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_validate_prints_the_rubrics_confidence_note(tiny_copy: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert not any(NOTE in line for line in validate(capsys, "rubrics/tiny.yaml"))
    rubric = tiny_copy / "rubrics" / "tiny.yaml"
    rubric.write_text(rubric.read_text("utf-8").replace(
        "defaults: {min_support: 3, decision: point}",
        "defaults: {min_support: 3, decision: significant, confidence: 0.95}"), "utf-8")
    for argv in (["rubrics/tiny.yaml"], ["suites/tiny.yaml"],
                 ["rubrics/tiny.yaml", "--suite", "suites/tiny.yaml"]):
        valid, note = validate(capsys, *argv)
        assert valid.startswith(f"{argv[0]}: valid ")
        assert note.startswith("note: rubrics/tiny.yaml: confidence 0.95 with alpha 0.05 (")
        assert NOTE in note
