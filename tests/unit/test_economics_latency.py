"""Latency: the timing method on fake models whose every duration is chosen, and its stopping rule.

The clock is injected: it moves only when a fake model "works", by exactly the cost the test
chose, so every time, ratio and interval below is deterministic.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from fractions import Fraction
from types import SimpleNamespace

import pytest

from harness.economics import (
    FEWEST_FOR_A_CI,
    LatencyReport,
    measure_latencies,
    measure_latency,
    ratio_interval,
    relative_half_width,
    scorecard,
)
from harness.models.base import ModelFacts


class FakeClock:
    """A clock that only moves when a fake model "works".

    It counts in exact fractions, so a measured duration is exactly the chosen cost.
    """

    def __init__(self) -> None:
        self.now = Fraction(0)

    def __call__(self) -> Fraction:
        return self.now


class FakeModel:
    """Costs ``(fixed + per_example * len(batch)) * jitter[call % len(jitter)]`` clock units
    per call; records ``(name, batch, cost)`` of every call."""

    def __init__(
        self,
        name: str,
        clock: FakeClock,
        fixed: float,
        per_example: float,
        log: list,
        jitter: Sequence[float] = (1.0,),
    ) -> None:
        self.name = name
        self.clock = clock
        self.fixed = fixed
        self.per_example = per_example
        self.log = log
        self.jitter = list(jitter)
        self.calls = 0

    def __call__(self, batch: Sequence[int]) -> None:
        cost = (self.fixed + self.per_example * len(batch)) * self.jitter[self.calls % len(self.jitter)]
        self.calls += 1
        self.log.append((self.name, list(batch), cost))
        self.clock.now += Fraction(cost)


def fakes(student_per_example: float = 0.025) -> tuple[FakeModel, FakeModel, FakeClock, list]:
    clock = FakeClock()
    log: list = []
    teacher = FakeModel("T", clock, 4.0, 0.1, log)
    student = FakeModel("S", clock, 1.0, student_per_example, log)
    return teacher, student, clock, log


def timed_costs(log: list, name: str, batch_size: int, warmup: int) -> list[float]:
    """The costs of ``name``'s timed calls at ``batch_size`` (its warm-up calls dropped)."""
    costs = [cost for who, batch, cost in log if who == name and len(batch) == batch_size]
    return costs[warmup:]


# ---------------------------------------------------------------------------- the method



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
    assert (report.warmup, report.repeats, report.sample_size, report.threads) == (2, 5, 64, None)
    # Fixed costs: the CI has zero width, so every batch size stops at the minimum.
    assert [s.repeats for s in report.per_batch] == [5, 5, 5]
    assert report.converged and report.ci_half_width == 0.0


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

    order = "".join(name for name, _, _ in log)
    per_size = "TS" + "TS" + "ST" + "TS" + "ST"  # warm-up, then flipped every repeat
    assert order == per_size * 2
    # Within each round, teacher and student get the same batch; rounds move through the sample.
    batches = [batch for _, batch, _ in log]
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
        runs.append([batch for _, batch, _ in log])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_latency_batch_larger_than_data_wraps() -> None:
    teacher, student, clock, log = fakes()
    report = measure_latency(teacher, student, 3, batch_sizes=(8,), repeats=2, clock=clock)
    assert report.sample_size == 3
    assert all(len(batch) == 8 and set(batch) == {0, 1, 2} for _, batch, _ in log)


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
    [
        {"batch_sizes": ()},
        {"batch_sizes": (0,)},
        {"repeats": 0},
        {"sample": 0},
        {"warmup": -1},
        {"repeats": 6, "max_repeats": 5},
        {"target_half_width": 0.0},
        {"confidence": 1.0},
    ],
)
def test_latency_rejects_bad_settings(kwargs: dict) -> None:
    teacher, student, clock, _ = fakes()
    with pytest.raises(ValueError):
        measure_latency(teacher, student, 10, clock=clock, **kwargs)




def test_unresolvable_clock_runs_to_the_maximum_and_is_not_converged() -> None:
    report = measure_latency(
        lambda b: None, lambda b: None, 5, batch_sizes=(1,), max_repeats=7, clock=FakeClock()
    )
    assert report.repeats == 7
    assert not report.converged


# ---------------------------------------------------------------------------- stopping rule

TARGET = 0.10
MIN, MAX = 5, 20

#: Multiplicative jitter of the student's successive calls (warm-up calls included), chosen.
JITTERS: dict[str, list[float]] = {
    "steady": [1.0],
    "mild": [1.0, 1.04, 0.97, 1.02, 0.99, 1.03, 0.96],
    # Wild for the first rounds, then steady: the CI narrows after some extra rounds.
    "settling": [1.0, 1.9, 0.5, 1.8, 0.6, 1.7, 0.55] + [1.0] * 100,
    "wild": [1.0, 2.0, 0.5, 1.7, 0.6],
}


def _run(jitter: list[float], **kwargs: object) -> tuple[LatencyReport, list]:
    clock = FakeClock()
    log: list = []
    teacher = FakeModel("T", clock, 4.0, 0.1, log)
    student = FakeModel("S", clock, 1.0, 0.025, log, jitter=jitter)
    settings = {"batch_sizes": (1, 4), "warmup": 1, "repeats": MIN, "max_repeats": MAX,
                "target_half_width": TARGET, "clock": clock, "seed": 3}
    settings.update(kwargs)
    return measure_latency(teacher, student, 50, **settings), log  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", sorted(JITTERS))
def test_stopping_rule_stops_at_the_first_narrow_interval_and_reports_it(pattern: str) -> None:
    report, log = _run(JITTERS[pattern])
    for k, stats in enumerate(report.per_batch):
        t = timed_costs(log, "T", stats.batch_size, warmup=1)
        s = timed_costs(log, "S", stats.batch_size, warmup=1)
        n = stats.repeats
        assert len(t) == len(s) == n
        assert MIN <= n <= MAX
        # The reported interval is the one the rule looked at: a pure function of the times.
        ratio, ci = ratio_interval(t, s, seed=3, index=k)
        assert (stats.ratio_p50, stats.ratio_ci) == (ratio, ci)
        if n < MAX:
            assert stats.ci_half_width <= TARGET
        for fewer in range(max(MIN, FEWEST_FOR_A_CI), n):  # it did not stop late
            r, c = ratio_interval(t[:fewer], s[:fewer], seed=3, index=k)
            assert relative_half_width(r, c) > TARGET
    widths = [s.ci_half_width for s in report.per_batch] + [report.ci_half_width]
    assert report.converged == all(w <= TARGET for w in widths)


def test_stopping_rule_outcomes_on_chosen_noise() -> None:
    steady, _ = _run(JITTERS["steady"])
    assert [s.repeats for s in steady.per_batch] == [MIN, MIN]
    assert steady.converged and steady.latency_improvement == pytest.approx(4.0)

    settling, _ = _run(JITTERS["settling"])
    first, second = settling.per_batch  # the wild calls all land on the first batch size
    assert MIN < first.repeats < MAX and second.repeats == MIN
    assert settling.converged and settling.ci_half_width <= TARGET

    wild, _ = _run(JITTERS["wild"])
    assert wild.repeats == MAX and not wild.converged
    assert wild.ci_half_width > TARGET
    d = wild.to_dict()
    assert (d["repeats"], d["min_repeats"], d["max_repeats"], d["converged"]) == (MAX, MIN, MAX, False)
    assert d["target_half_width"] == TARGET


def test_equal_minimum_and_maximum_is_a_fixed_count() -> None:
    report, log = _run(JITTERS["wild"], repeats=4, max_repeats=4)
    assert [s.repeats for s in report.per_batch] == [4, 4]
    assert len(log) == 2 * (1 + 4) * 2  # two models, warm-up + 4 rounds, two batch sizes


def test_fewer_than_three_repeats_never_count_as_converged() -> None:
    report, _ = _run(JITTERS["steady"], repeats=2, max_repeats=2)
    assert report.repeats == 2
    assert report.ci_half_width == 0.0
    assert not report.converged


def test_scorecard_timing_section_reports_repeats_and_ci() -> None:
    report, _ = _run(JITTERS["mild"])
    section, _ = scorecard(
        teacher=ModelFacts(),
        student=ModelFacts(),
        latency=report,
        economics=None,
        training=None,
        quality_retained=None,
    )
    timing = section["timing"]
    assert timing["latency_repeats"] == report.repeats
    assert timing["latency_ci"] == list(report.latency_ci)
    assert timing["latency_ci_half_width"] == pytest.approx(report.ci_half_width)
    assert timing["latency_converged"] is report.converged
    assert [b["repeats"] for b in timing["latency"]["per_batch"]] == [
        s.repeats for s in report.per_batch]
    json.dumps(section, allow_nan=False)


# ---------------------------------------------------------------------------- several students


def _students(clock: FakeClock, log: list, **jitters: list[float]) -> dict[str, FakeModel]:
    fixed = {"a": 2.0, "b": 1.0, "c": 0.5}
    return {name: FakeModel(name, clock, fixed[name], 0.0, log, jitter=jitters.get(name, [1.0]))
            for name in ("a", "b", "c")}


def test_several_students_share_the_teacher_runs() -> None:
    clock, log = FakeClock(), []
    teacher = FakeModel("T", clock, 4.0, 0.0, log)
    reports = measure_latencies(teacher, _students(clock, log), 20, batch_sizes=(2, 3), warmup=1,
                                repeats=4, clock=clock)
    assert list(reports) == ["a", "b", "c"]
    order = "".join(name for name, _, _ in log)
    per_size = "Tabc" + "Tabc" + "cbaT" + "Tabc" + "cbaT"  # warm-up, then reversed every round
    assert order == per_size * 2
    assert sum(1 for name, _, _ in log if name == "T") == 2 * (1 + 4)  # once per round, not 3x
    rounds = [log[i:i + 4] for i in range(0, len(log), 4)]
    assert all(len({tuple(batch) for _, batch, _ in r}) == 1 for r in rounds)  # same batch
    for name, ratio in (("a", 2.0), ("b", 4.0), ("c", 8.0)):
        assert reports[name].latency_improvement == pytest.approx(ratio)
        assert reports[name].converged
    teacher_p50 = {tuple(s.teacher_p50 for s in r.per_batch) for r in reports.values()}
    assert len(teacher_p50) == 1


def test_several_students_run_until_every_ratio_is_narrow() -> None:
    clock, log = FakeClock(), []
    teacher = FakeModel("T", clock, 4.0, 0.0, log)
    reports = measure_latencies(teacher, _students(clock, log, c=JITTERS["wild"]), 20,
                                batch_sizes=(1,), warmup=0, repeats=MIN, max_repeats=MAX,
                                clock=clock)
    assert {r.repeats for r in reports.values()} == {MAX}  # c is noisy: everyone keeps going
    assert reports["a"].converged and reports["b"].converged
    assert not reports["c"].converged


def test_one_student_is_the_several_students_method() -> None:
    t1, s1, c1, _ = fakes()
    t2, s2, c2, _ = fakes()
    one = measure_latency(t1, s1, 30, batch_sizes=(1, 8), clock=c1)
    several = measure_latencies(t2, {"student": s2}, 30, batch_sizes=(1, 8), clock=c2)
    assert several == {"student": one}


def test_several_students_need_one() -> None:
    teacher, _, clock, _ = fakes()
    with pytest.raises(ValueError, match="at least one student"):
        measure_latencies(teacher, {}, 10, clock=clock)
