"""scripts/report_diff.py: two reports compare equal apart from the fields measured time gives,
and every other difference is named by its path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "report_diff.py"


@pytest.fixture(scope="module")
def report_diff() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_diff", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _suite(**changes: object) -> dict[str, object]:
    suite: dict[str, object] = {
        "name": "s", "verdict": "fail",
        "checks": [{"id": "s::speed[overall]", "metric": "latency_improvement", "value": 0.4,
                    "message": "latency_improvement = 0.4", "verdict": "fail"},
                   {"id": "s::gap[lang=de]", "metric": "accuracy", "value": -0.2,
                    "verdict": "fail"}],
        "economics": {"timing": {"latency": {"per_batch": [{"teacher_p50": 0.01}]},
                                 "latency_improvement": 0.4, "latency_repeats": 5,
                                 "cost_reduction": 0.5}},
    }
    suite.update(changes)
    return {"verdict": "fail", "suites": [suite]}


def test_timing_fields_are_left_out(report_diff: ModuleType) -> None:
    before = _suite()
    after = _suite()
    after["suites"][0]["economics"]["timing"].update(  # type: ignore[index]
        latency={"per_batch": [{"teacher_p50": 0.03}]}, latency_improvement=0.3,
        latency_repeats=9)
    after["suites"][0]["checks"][0].update(value=0.3, message="latency_improvement = 0.3")  # type: ignore[index]
    assert report_diff.differences(report_diff.strip_timing(before),
                                   report_diff.strip_timing(after)) == []


def test_anything_else_is_named_by_its_path(report_diff: ModuleType) -> None:
    before, after = _suite(), _suite()
    after["suites"][0]["checks"][1]["value"] = -0.1  # type: ignore[index]
    after["suites"][0]["checks"][0]["verdict"] = "pass"  # type: ignore[index]
    after["suites"][0]["economics"]["timing"]["cost_reduction"] = 0.6  # type: ignore[index]
    found = report_diff.differences(report_diff.strip_timing(before),
                                    report_diff.strip_timing(after))
    assert found == [".suites[0].checks[0].verdict: \"fail\" -> \"pass\"",
                     ".suites[0].checks[1].value: -0.2 -> -0.1",
                     ".suites[0].economics.timing.cost_reduction: 0.5 -> 0.6"]
    ignored = report_diff.strip_timing(after, frozenset({"value"}))
    assert "value" not in ignored["suites"][0]["checks"][1]


def test_diff_of_two_runs_reads_their_status_and_reports(report_diff: ModuleType,
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    for name, doc, rc in (("before", _suite(), 1), ("after", _suite(verdict="pass"), 0)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tiny.0.json").write_text(json.dumps(doc))
        (folder / "status.json").write_text(json.dumps({"tiny.0": {"rc": rc, "args": []}}))
    assert report_diff.diff(tmp_path / "before", tmp_path / "after") == 1
    out = capsys.readouterr().out
    assert "tiny.0: DIFFERS" in out and "exit status 1 -> 0" in out
    assert '.suites[0].verdict: "fail" -> "pass"' in out
    assert report_diff.diff(tmp_path / "before", tmp_path / "before") == 0
