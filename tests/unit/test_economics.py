"""The economics scorecard: timing method on fake models with known costs, and the arithmetic."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.economics import (
    METRICS,
    TIMING_KEY,
    TIMING_METRICS,
    Candidate,
    EconomicsSettings,
    LatencyReport,
    cost_per_million,
    frontier_plot,
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


class FakeClock:
    """A clock that only moves when a fake model "works"."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    """Costs ``fixed + per_example * len(batch)`` clock units per call; records its calls."""

    def __init__(
        self, name: str, clock: FakeClock, fixed: float, per_example: float, log: list
    ) -> None:
        self.name = name
        self.clock = clock
        self.fixed = fixed
        self.per_example = per_example
        self.log = log

    def __call__(self, batch: Sequence[int]) -> None:
        self.log.append((self.name, list(batch)))
        self.clock.now += self.fixed + self.per_example * len(batch)


def fakes(student_per_example: float = 0.025) -> tuple[FakeModel, FakeModel, FakeClock, list]:
    clock = FakeClock()
    log: list = []
    teacher = FakeModel("T", clock, 4.0, 0.1, log)
    student = FakeModel("S", clock, 1.0, student_per_example, log)
    return teacher, student, clock, log


# ---------------------------------------------------------------------------- measure_latency


def test_latency_recovers_known_costs() -> None:
    teacher, student, clock, _ = fakes()
    report = measure_latency(teacher, student, 100, clock=clock)

    assert [s.batch_size for s in report.per_batch] == [1, 8, 32]
    for s in report.per_batch:
        b = s.batch_size
        t_cost, s_cost = 4.0 + 0.1 * b, 1.0 + 0.025 * b
        for value in (s.teacher_p50, s.teacher_p90, s.teacher_p99):
            assert value == pytest.approx(t_cost)
        for value in (s.student_p50, s.student_p90, s.student_p99):
            assert value == pytest.approx(s_cost)
        assert s.ratio_p50 == pytest.approx(4.0)
        assert s.ratio_ci == pytest.approx((4.0, 4.0))
        assert s.teacher_throughput == pytest.approx(b / t_cost)
        assert s.student_throughput == pytest.approx(b / s_cost)
    assert report.latency_improvement == pytest.approx(4.0)
    assert report.latency_ci == pytest.approx((4.0, 4.0))
    assert report.throughput_improvement == pytest.approx(4.0)
    assert (report.warmup, report.repeats, report.sample_size, report.threads) == (2, 10, 64, None)


def test_latency_improvement_is_geometric_mean_and_throughput_uses_best_batch() -> None:
    # Student 1.0 + 0.1/example: a big win at batch 1, a small one at batch 32.
    teacher, student, clock, _ = fakes(student_per_example=0.1)
    report = measure_latency(teacher, student, 50, batch_sizes=(1, 32), repeats=4, clock=clock)

    ratios = [(4.0 + 0.1 * b) / (1.0 + 0.1 * b) for b in (1, 32)]
    assert [s.ratio_p50 for s in report.per_batch] == pytest.approx(ratios)
    assert report.latency_improvement == pytest.approx(math.sqrt(ratios[0] * ratios[1]))
    lo, hi = report.latency_ci
    assert lo <= report.latency_improvement <= hi
    # Both models are at their best throughput at batch 32.
    assert report.throughput_improvement == pytest.approx(ratios[1])
    assert report.teacher_throughput == pytest.approx(32 / 7.2)
    assert report.student_throughput == pytest.approx(32 / 4.2)


def test_latency_alternates_and_flips_start_order() -> None:
    teacher, student, clock, log = fakes()
    measure_latency(teacher, student, 10, batch_sizes=(2, 3), warmup=1, repeats=4, clock=clock)

    order = "".join(name for name, _ in log)
    per_size = "TS" + "TS" + "ST" + "TS" + "ST"  # warm-up, then flipped every repeat
    assert order == per_size * 2
    # Within each round, teacher and student get the same batch; rounds move through the sample.
    batches = [batch for _, batch in log]
    pairs = list(zip(batches[::2], batches[1::2], strict=True))
    assert all(a == b for a, b in pairs)
    assert [len(a) for a, _ in pairs] == [2] * 5 + [3] * 5
    first_size = [a for a, _ in pairs[:5]]
    assert len({tuple(b) for b in first_size}) == 5
    assert all(0 <= p < 10 for b in batches for p in b)


def test_latency_warmup_is_not_timed() -> None:
    clock = FakeClock()
    calls = {"T": 0, "S": 0}

    def slow_first(name: str, fixed: float):
        def run(batch: Sequence[int]) -> None:
            calls[name] += 1
            clock.now += 1000.0 if calls[name] == 1 else fixed

        return run

    report = measure_latency(
        slow_first("T", 2.0), slow_first("S", 1.0), 5, batch_sizes=(1,), warmup=1, clock=clock
    )
    assert report.per_batch[0].teacher_p99 == pytest.approx(2.0)
    assert report.per_batch[0].student_p99 == pytest.approx(1.0)


def test_latency_is_seeded() -> None:
    runs = []
    for seed in (0, 0, 1):
        teacher, student, clock, log = fakes()
        measure_latency(teacher, student, 1000, batch_sizes=(4,), repeats=2, seed=seed, clock=clock)
        runs.append([batch for _, batch in log])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_latency_batch_larger_than_data_wraps() -> None:
    teacher, student, clock, log = fakes()
    report = measure_latency(teacher, student, 3, batch_sizes=(8,), repeats=2, clock=clock)
    assert report.sample_size == 3
    assert all(len(batch) == 8 and set(batch) == {0, 1, 2} for _, batch in log)


def test_latency_fixes_torch_threads_only_when_torch_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = {"threads": 7}
    seen: list[int] = []
    fake_torch = SimpleNamespace(
        get_num_threads=lambda: state["threads"],
        set_num_threads=lambda n: state.update(threads=n),
    )
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    teacher, student, clock, _ = fakes()

    def watched(batch: Sequence[int]) -> None:
        seen.append(state["threads"])
        teacher(batch)

    report = measure_latency(watched, student, 10, batch_sizes=(1,), threads=2, clock=clock)
    assert set(seen) == {2}
    assert state["threads"] == 7
    assert report.threads == 2

    def broken(batch: Sequence[int]) -> None:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        measure_latency(broken, student, 10, threads=3, clock=clock)
    assert state["threads"] == 7


def test_latency_never_imports_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    teacher, student, clock, _ = fakes()
    measure_latency(teacher, student, 10, batch_sizes=(1,), threads=1, clock=clock)
    assert "torch" not in sys.modules


def test_latency_report_to_dict_is_json() -> None:
    teacher, student, clock, _ = fakes()
    report = measure_latency(teacher, student, 10, batch_sizes=(1, 4), repeats=3, clock=clock)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["latency_improvement"] == pytest.approx(4.0)
    assert [b["batch_size"] for b in d["per_batch"]] == [1, 4]
    assert d["repeats"] == 3


def test_latency_unresolvable_clock_gives_none_not_crash() -> None:
    frozen = FakeClock()  # never advances: every duration is 0
    report = measure_latency(lambda b: None, lambda b: None, 5, batch_sizes=(1,), clock=frozen)
    assert math.isnan(report.latency_improvement)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["latency_improvement"] is None
    _, metrics = scorecard(
        teacher=ModelFacts(),
        student=ModelFacts(),
        latency=report,
        economics={"usd_per_hour": 1.0},
        training=None,
        quality_retained=None,
    )
    assert metrics == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_sizes": ()}, {"batch_sizes": (0,)}, {"repeats": 0}, {"sample": 0}, {"warmup": -1}],
)
def test_latency_rejects_bad_settings(kwargs: dict) -> None:
    teacher, student, clock, _ = fakes()
    with pytest.raises(ValueError):
        measure_latency(teacher, student, 10, clock=clock, **kwargs)


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
        "threads": 4,
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"usd_per_hour": -1}, "economics.usd_per_hour"),
        ({"usd_per_hour": "cheap"}, "economics.usd_per_hour"),
        ({"usd_per_hour": {"teacher": 1, "student": True}}, "economics.usd_per_hour.student"),
        ({"usd_per_hour": {"techer": 1}}, "economics.usd_per_hour.techer"),
        ({"batch_sizes": []}, "economics.batch_sizes"),
        ({"batch_sizes": [1, 0]}, "economics.batch_sizes[1]"),
        ({"batch_sizes": [8, 8]}, "economics.batch_sizes"),
        ({"sample": 0}, "economics.sample"),
        ({"warmup": -1}, "economics.warmup"),
        ({"repeats": 2.5}, "economics.repeats"),
        ({"threads": 0}, "economics.threads"),
        ({"repeat": 3}, "economics.repeat"),
    ],
)
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
    teacher, student, clock, _ = fakes()
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
    teacher, student, clock, _ = fakes()
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
