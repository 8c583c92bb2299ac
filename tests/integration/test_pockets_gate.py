"""A planted pocket fails the gate through ``pytest --distill-suite``; null data passes.

Uses the committed tickets example: its student collapsed on German tickets, a slice the
discovery search must find with exactly its predicate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tickets(pytester: pytest.Pytester) -> Path:
    root = pytester.path
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
    shutil.copytree(REPO / "examples" / "tickets", root / "examples" / "tickets")
    (root / "suites").mkdir()
    (root / "rubrics").mkdir()
    shutil.copyfile(REPO / "suites" / "tickets.yaml", root / "suites" / "tickets.yaml")
    shutil.copyfile(REPO / "rubrics" / "tickets.yaml", root / "rubrics" / "tickets.yaml")
    return root


def _run(pytester: pytest.Pytester, root: Path) -> tuple[pytest.RunResult, dict]:
    report = root / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "--distill-suite", "suites/tickets.yaml",
                                "--distill-no-cache", "--distill-report", str(report))
    return result, json.loads(report.read_text())


def test_the_planted_pocket_fails_the_gate(pytester: pytest.Pytester, tickets: Path) -> None:
    result, report = _run(pytester, tickets)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED suites/tickets.yaml::pockets[[]discovered[]]*"])
    pockets = report["suites"][0]["pockets"]
    confirmed = [p for p in pockets if p["confirmed"]]
    assert [p["slice"] for p in confirmed] == ["lang=de"]
    assert confirmed[0]["predicates"] == [{"feature": "lang", "op": "eq", "value": "de"}]
    assert confirmed[0]["delta"] < -0.08 and confirmed[0]["q_value"] < 0.05


def test_null_data_finds_no_pocket_and_passes(pytester: pytest.Pytester, tickets: Path) -> None:
    data = tickets / "examples" / "tickets"
    shutil.copyfile(data / "teacher.jsonl", data / "student.jsonl")  # a student equal to its teacher
    result, report = _run(pytester, tickets)
    assert result.ret == 0, result.stdout.str()
    suite = report["suites"][0]
    assert not [p for p in suite["pockets"] if p["confirmed"]]
    check = next(c for c in suite["checks"] if c["criterion"] == "pockets")
    assert check["verdict"] == "pass"
