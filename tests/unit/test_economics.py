"""The economics scorecard: the arithmetic, the candidates, the settings and their schema.

The latency measurement and its stopping rule are tested in test_economics_latency.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import harness
from harness import economics
from harness.economics import (
    METRICS,
    TIMING_KEY,
    TIMING_METRICS,
    Candidate,
    EconomicsSettings,
    LatencyReport,
    cost_per_million,
    measure_latency,
    pareto_frontier,
    parse_economics,
    parse_training,
    payback_point,
    recommend,
    scorecard,
    size_reduction,
    training_efficiency,
)
from harness.errors import SpecError
from harness.models.base import ModelFacts
from harness.report.frontier_plot import frontier_plot


def fixed_cost_models() -> tuple:
    """Teacher 4 + 0.1/example, student 1 + 0.025/example clock units: a 4x speed-up."""
    clock = {"now": 0.0}

    def model(fixed: float, per_example: float):
        def run(batch: list[int]) -> None:
            clock["now"] += fixed + per_example * len(batch)
        return run

    return model(4.0, 0.1), model(1.0, 0.025), lambda: clock["now"]


# ---------------------------------------------------------------------------- size and cost


def test_size_reduction() -> None:
    teacher = ModelFacts(params=100, bytes=400)
    assert size_reduction(teacher, ModelFacts(params=25, bytes=300)) == pytest.approx(
        {"params": 0.75, "bytes": 0.25}
    )
    assert size_reduction(teacher, ModelFacts(params=25)) == {"params": 0.75, "bytes": None}
    assert size_reduction(ModelFacts(params=0), ModelFacts(params=1))["params"] is None
    assert size_reduction(teacher, ModelFacts(params=200))["params"] == pytest.approx(-1.0)


def test_cost_per_million() -> None:
    # $3.60/hour at 1000 examples/s: 3.6M examples/hour -> $1 per million.
    assert cost_per_million(3.6, 1000.0) == pytest.approx(1.0)
    assert cost_per_million(1.2, 100.0) == pytest.approx(1.2 / 360000 * 1e6)
    assert cost_per_million(0.0, 5.0) == 0.0
    with pytest.raises(ValueError):
        cost_per_million(1.0, 0.0)
    with pytest.raises(ValueError):
        cost_per_million(-1.0, 1.0)


def test_payback_point() -> None:
    assert payback_point(1000.0, 5.0, 1.0) == pytest.approx(250e6)
    assert payback_point(14.0, 2.0, 0.6) == pytest.approx(10e6)
    assert payback_point(0.0, 5.0, 1.0) == 0.0
    assert payback_point(1000.0, 1.0, 1.0) is None
    assert payback_point(1000.0, 1.0, 2.0) is None


def test_training_efficiency() -> None:
    assert training_efficiency(0.98, 3.5) == pytest.approx(0.28)
    assert training_efficiency(0.98, None) is None
    assert training_efficiency(0.98, 0.0) is None


# ---------------------------------------------------------------------------- candidates


CANDIDATES = [
    Candidate("l6", quality_ratio=0.99, latency=0.040, size=60, passes=True, cost_per_million=4.0),
    Candidate("l4", quality_ratio=0.97, latency=0.030, size=40, passes=True, cost_per_million=3.0),
    # dominated by l4: worse quality, slower, bigger
    Candidate("l4b", quality_ratio=0.96, latency=0.035, size=45, passes=True, cost_per_million=3.5),
    Candidate("l2", quality_ratio=0.90, latency=0.015, size=20, passes=False, cost_per_million=1.5),
    Candidate("l3", quality_ratio=0.95, latency=0.020, size=30, passes=True, cost_per_million=2.0),
]


def test_pareto_frontier_excludes_dominated_and_is_order_independent() -> None:
    front = pareto_frontier(CANDIDATES)
    assert front == ["l2", "l3", "l4", "l6"]
    assert pareto_frontier(list(reversed(CANDIDATES))) == front


def test_pareto_frontier_ties() -> None:
    a = Candidate("a", 0.9, 1.0, 10, passes=True)
    twin = Candidate("twin", 0.9, 1.0, 10, passes=True)
    same_quality_slower = Candidate("slow", 0.9, 2.0, 10, passes=True)
    assert pareto_frontier([twin, a, same_quality_slower]) == ["a", "twin"]
    with pytest.raises(ValueError):
        pareto_frontier([a, a])
    with pytest.raises(ValueError):
        pareto_frontier([Candidate("n", math.nan, 1.0, 1.0, passes=True)])


def test_recommend_cheapest_passing() -> None:
    # l2 is cheapest but fails a gate.
    assert recommend(CANDIDATES) == "l3"
    assert recommend([c for c in CANDIDATES if c.name == "l2"]) is None
    assert recommend([]) is None


def test_recommend_without_costs_uses_latency_then_size() -> None:
    cands = [
        Candidate("big", 0.9, 1.0, 50, passes=True),
        Candidate("small", 0.9, 1.0, 10, passes=True, cost_per_million=9.0),
        Candidate("slow", 0.9, 2.0, 5, passes=True, cost_per_million=0.1),
    ]
    # Not every passing candidate has a cost, so costs are not compared.
    assert recommend(cands) == "small"


def test_frontier_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "plots" / "frontier.png"
    out = frontier_plot(CANDIDATES, pareto_frontier(CANDIDATES), recommend(CANDIDATES), target)
    assert out == target
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["frontier.png"]  # no temp file left


def test_frontier_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    assert frontier_plot(CANDIDATES, [], None, tmp_path / "f.png") is None
    assert not (tmp_path / "f.png").exists()


# ---------------------------------------------------------------------------- settings


def test_parse_economics_defaults_and_forms() -> None:
    assert parse_economics(None, Path("s.yaml")) == EconomicsSettings()
    one = parse_economics({"usd_per_hour": 1.2}, Path("s.yaml"))
    assert (one.teacher_usd_per_hour, one.student_usd_per_hour) == (1.2, 1.2)
    per_role = parse_economics(
        {
            "usd_per_hour": {"teacher": 2.5, "student": 0.8},
            "batch_sizes": [1, 16],
            "sample": 32,
            "warmup": 0,
            "repeats": 5,
            "threads": 4,
        },
        Path("s.yaml"),
    )
    assert per_role == EconomicsSettings(2.5, 0.8, (1, 16), 32, 0, 5, 4)
    assert per_role.latency_kwargs() == {
        "batch_sizes": (1, 16),
        "sample": 32,
        "warmup": 0,
        "repeats": 5,
        "max_repeats": 20,
        "target_half_width": 0.10,
        "threads": 4,
    }


#: Sections parse_economics refuses, and the field each error names.
BAD_SECTIONS = [
    ({"usd_per_hour": -1}, "economics.usd_per_hour"),
    ({"usd_per_hour": "cheap"}, "economics.usd_per_hour"),
    ({"usd_per_hour": {"teacher": 1, "student": True}}, "economics.usd_per_hour.student"),
    ({"usd_per_hour": {"techer": 1}}, "economics.usd_per_hour.techer"),
    ({"batch_sizes": []}, "economics.batch_sizes"),
    ({"batch_sizes": [1, 0]}, "economics.batch_sizes[1]"),
    ({"batch_sizes": [8, 8]}, "economics.batch_sizes"),
    ({"batch_sizes": None}, "economics.batch_sizes"),
    ({"sample": 0}, "economics.sample"),
    ({"warmup": -1}, "economics.warmup"),
    ({"repeats": 2.5}, "economics.repeats"),
    ({"repeats": None}, "economics.repeats"),
    ({"threads": 0}, "economics.threads"),
    ({"repeat": 3}, "economics.repeat"),
    ({"latency": 5}, "economics.latency"),
    ({"latency": {"min_repeat": 5}}, "economics.latency.min_repeat"),
    ({"latency": {"min_repeats": 0}}, "economics.latency.min_repeats"),
    ({"latency": {"max_repeats": True}}, "economics.latency.max_repeats"),
    ({"latency": {"target_half_width": 0}}, "economics.latency.target_half_width"),
    ({"latency": {"target_half_width": 1.5}}, "economics.latency.target_half_width"),
    ({"latency": {"target_half_width": "10%"}}, "economics.latency.target_half_width"),
]

#: Refused for how two fields relate, which the JSON Schema cannot say.
BAD_TOGETHER = [
    ({"repeats": 5, "latency": {"min_repeats": 8}}, "economics.latency.min_repeats"),
    ({"latency": {"min_repeats": 8, "max_repeats": 6}}, "economics.latency.max_repeats"),
]

GOOD_SECTIONS = [
    {},
    {"usd_per_hour": 0.1},
    {"usd_per_hour": None},
    {"usd_per_hour": {"teacher": 0.1}},
    {"usd_per_hour": {"teacher": 0.1, "student": None}},
    {"batch_sizes": 8, "sample": 1, "warmup": 0, "repeats": 1, "threads": None},
    {"batch_sizes": [1, 32], "threads": 2, "repeats": 5, "latency": {"min_repeats": 5}},
    {"latency": {"min_repeats": 3, "max_repeats": 3, "target_half_width": 1}},
    {"latency": {}},
]


@pytest.mark.parametrize(("raw", "field"), BAD_SECTIONS + BAD_TOGETHER)
def test_parse_economics_errors_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_economics(raw, Path("suites/s.yaml"))
    assert info.value.field == field
    assert str(info.value).startswith(f"suites/s.yaml: {field}: ")


def test_parse_economics_suggests_a_key() -> None:
    with pytest.raises(SpecError, match="did you mean 'repeats'"):
        parse_economics({"repeat": 3}, Path("s.yaml"))


def test_parse_training_errors() -> None:
    facts = parse_training({"gpu_hours": 3.5, "usd": 14.0, "examples": 120000})
    assert (facts.gpu_hours, facts.usd, facts.examples) == (3.5, 14.0, 120000)
    with pytest.raises(SpecError) as info:
        parse_training({"gpu_hour": 3}, Path("s.yaml"))
    assert info.value.field == "student.metadata.training.gpu_hour"
    assert "did you mean 'gpu_hours'" in str(info.value)
    with pytest.raises(SpecError) as info:
        parse_training({"usd": -3}, Path("s.yaml"))
    assert info.value.field == "student.metadata.training.usd"


# ---------------------------------------------------------------------------- scorecard


def test_scorecard_metrics_and_timing_grouping() -> None:
    teacher, student, clock = fixed_cost_models()
    report = measure_latency(teacher, student, 100, batch_sizes=(1, 32), repeats=4, clock=clock)
    section, metrics = scorecard(
        teacher=ModelFacts(params=1000, bytes=4000),
        student=ModelFacts(params=250, bytes=2000),
        latency=report,
        economics={"usd_per_hour": {"teacher": 2.0, "student": 1.0}},
        training={"gpu_hours": 2.0, "usd": 10.0, "examples": 5000},
        quality_retained=0.98,
    )
    assert set(metrics) == set(METRICS)
    assert set(TIMING_METRICS) <= set(METRICS)
    assert metrics["size_reduction"] == pytest.approx(0.75)
    assert metrics["size_reduction_bytes"] == pytest.approx(0.5)
    assert metrics["latency_improvement"] == pytest.approx(4.0)
    assert metrics["throughput_improvement"] == pytest.approx(4.0)
    teacher_cpm = 2.0 / (32 / 7.2 * 3600) * 1e6
    student_cpm = 1.0 / (32 / 1.8 * 3600) * 1e6
    assert metrics["teacher_cost_per_million"] == pytest.approx(teacher_cpm)
    assert metrics["student_cost_per_million"] == pytest.approx(student_cpm)
    assert metrics["cost_reduction"] == pytest.approx(1 - student_cpm / teacher_cpm)
    assert metrics["payback_predictions"] == pytest.approx(10.0 / (teacher_cpm - student_cpm) * 1e6)
    assert metrics["quality_retained_per_gpu_hour"] == pytest.approx(0.49)

    # Every timing-derived value sits under one key; without it the section is deterministic.
    for name in TIMING_METRICS:
        assert name not in section
        assert section[TIMING_KEY][name] == pytest.approx(metrics[name])
    json.dumps(section, allow_nan=False)
    same_facts, _ = scorecard(
        teacher=ModelFacts(params=1000, bytes=4000),
        student=ModelFacts(params=250, bytes=2000),
        latency=None,
        economics={"usd_per_hour": {"teacher": 2.0, "student": 1.0}},
        training={"gpu_hours": 2.0, "usd": 10.0, "examples": 5000},
        quality_retained=0.98,
    )
    section.pop(TIMING_KEY)
    same_facts.pop(TIMING_KEY)
    assert section == same_facts


def test_scorecard_leaves_out_what_cannot_be_computed() -> None:
    section, metrics = scorecard(
        teacher=ModelFacts(params=1000),
        student=ModelFacts(params=500),
        latency=None,
        economics={},
        training=None,
        quality_retained=None,
    )
    assert metrics == {"size_reduction": pytest.approx(0.5)}
    assert section[TIMING_KEY] is None
    assert section["size_reduction_bytes"] is None


def test_scorecard_student_not_cheaper_has_no_payback() -> None:
    teacher, student, clock = fixed_cost_models()
    report: LatencyReport = measure_latency(
        teacher, student, 10, batch_sizes=(1,), repeats=2, clock=clock
    )
    section, metrics = scorecard(
        teacher=ModelFacts(),
        student=ModelFacts(),
        latency=report,
        economics={"usd_per_hour": {"teacher": 1.0, "student": 100.0}},
        training={"usd": 10.0},
        quality_retained=None,
    )
    assert "payback_predictions" not in metrics
    assert section[TIMING_KEY]["payback_predictions"] is None
    assert metrics["cost_reduction"] < 0


def test_scorecard_validates_economics() -> None:
    with pytest.raises(SpecError) as info:
        scorecard(
            teacher=ModelFacts(),
            student=ModelFacts(),
            latency=None,
            economics={"usd_per_hour": -2},
            training=None,
            quality_retained=None,
            source=Path("suites/s.yaml"),
        )
    assert info.value.field == "economics.usd_per_hour"


def test_parse_economics_latency_block() -> None:
    assert parse_economics({"latency": {"max_repeats": 12, "target_half_width": 0.05}}) == (
        EconomicsSettings(max_repeats=12, target_half_width=0.05))
    # repeats and latency.min_repeats are one setting; the maximum follows a large minimum.
    assert parse_economics({"repeats": 40}) == parse_economics({"latency": {"min_repeats": 40}})
    assert parse_economics({"repeats": 40}).max_repeats == 40
    kwargs = parse_economics({"latency": {"min_repeats": 3, "max_repeats": 9}}).latency_kwargs()
    assert (kwargs["repeats"], kwargs["max_repeats"]) == (3, 9)


# ---------------------------------------------------------------------------- the suite schema


def _economics_schema() -> jsonschema.Draft202012Validator:
    path = Path(harness.__file__).parent / "schemas" / "suite.schema.json"
    schema = json.loads(path.read_text("utf-8"))["properties"]["economics"]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("raw", GOOD_SECTIONS)
def test_schema_accepts_what_parse_economics_accepts(raw: dict) -> None:
    parse_economics(raw, "s.yaml")
    assert list(_economics_schema().iter_errors(raw)) == []


@pytest.mark.parametrize(("raw", "field"), BAD_SECTIONS)
def test_schema_refuses_what_parse_economics_refuses(raw: dict, field: str) -> None:
    errors = list(_economics_schema().iter_errors(raw))
    assert errors, f"the schema accepts {raw}"


# ---------------------------------------------------------------------------- the package


def test_package_keeps_the_names_its_callers_import() -> None:
    for name in ("measure_latency", "measure_latencies", "parse_economics", "parse_training",
                 "scorecard", "TIMING_METRICS", "TIMING_KEY", "METRICS", "Candidate",
                 "pareto_frontier", "recommend", "EconomicsSettings",
                 "LatencyReport", "LatencyStats", "TrainingFacts"):
        assert hasattr(economics, name), name
    assert set(economics.__all__) <= set(dir(economics))


def test_importing_economics_imports_no_plotting_library() -> None:
    probe = ("import sys, harness.economics\n"
             "print(sorted(m for m in ('matplotlib', 'harness.report.frontier_plot') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"
