"""gate.py: planning checks, the verdict function, and checks on fixed outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import gate
from harness.outputs import EvalContext, Outputs
from harness.spec_types import Criterion, RubricSpec


def criterion(name="c", metric="accuracy", compare="teacher_delta", scope="slices", *, min=None,
              max=None, index=0, **kw) -> Criterion:
    base = dict(name=name, metric=metric, compare=compare, scope=scope, index=index, min=min,
                max=max, severity="fail", decision="significant", alpha=0.05, confidence=0.95,
                min_support=5, line=None)
    base.update(kw)
    return Criterion(**base)


# --------------------------------------------------------------------------- breaches / decide

@pytest.mark.parametrize(("value", "lo", "hi", "out"), [
    (0.5, 0.4, None, False), (0.4, 0.4, None, False), (0.39, 0.4, None, True),
    (0.5, None, 0.5, False), (0.51, None, 0.5, True),
    (0.5, 0.4, 0.6, False), (0.3, 0.4, 0.6, True), (0.7, 0.4, 0.6, True),
])
def test_breaches(value, lo, hi, out):
    assert gate.breaches(value, min=lo, max=hi) is out


BASE = dict(min=0.0, max=None, n=100, min_support=30, alpha=0.05)


@pytest.mark.parametrize(("kw", "verdict"), [
    (dict(value=0.1), "pass"),
    (dict(value=None), "error"),
    (dict(value=-0.1, p_value=0.01), "fail"),
    (dict(value=-0.1, p_value=0.2), "inconclusive"),
    (dict(value=-0.1, p_value=0.2, strict=True), "fail"),
    (dict(value=-0.1, p_value=0.01, q_value=0.2), "inconclusive"),  # q decides when given
    (dict(value=-0.1, p_value=0.2, q_value=0.01), "fail"),
    (dict(value=-0.1, p_value=0.01, n=10), "inconclusive"),  # below min_support
    (dict(value=-0.1, p_value=0.01, n=10, strict=True), "fail"),
    (dict(value=-0.1, p_value=0.01, severity="warn"), "warn"),
    (dict(value=-0.1, p_value=0.9, decision="point"), "fail"),
    (dict(value=-0.1, testable=False, n=1), "fail"),  # a run-level figure: the point decides
    (dict(value=-0.1, p_value=None), "inconclusive"),
])
def test_decide(kw, verdict):
    assert gate.decide(**{**BASE, **kw}) == verdict


# --------------------------------------------------------------------------- planning

def test_plan_checks_names_and_scopes():
    rubric = RubricSpec(path=Path("rubrics/r.yaml"), id="r", version=1, criteria=(
        criterion("ratio", compare="teacher_ratio", scope="overall", min=0.9),
        criterion("gap", scope="slices", min=-0.05, index=1),
        criterion("both", scope="all", min=-0.1, index=2),
        criterion("pockets", scope="discovered", min=-0.1, index=3),
    ))
    plan = gate.plan_checks("tickets", rubric, ["overall", "lang=de", "has_negation=true"])
    assert [p.id for p in plan] == [
        "tickets::ratio[overall]",
        "tickets::gap[lang=de]", "tickets::gap[has_negation=true]",
        "tickets::both[overall]", "tickets::both[lang=de]", "tickets::both[has_negation=true]",
        "tickets::pockets[discovered]",
    ]


# --------------------------------------------------------------------------- checks on fixed outputs

LABELS = ("pos", "neg")
N = 40
GOLD = np.zeros(N, dtype=int)
TEACHER = np.zeros(N, dtype=int)  # always right
STUDENT = np.zeros(N, dtype=int)
STUDENT[:16] = 1  # wrong on the 16 examples of slice "bad", right on "good"
SLICES = {"overall": np.arange(N), "bad": np.arange(16), "good": np.arange(16, N)}
IDS = [f"x{i:02d}" for i in range(N)]


def inputs(student=STUDENT) -> gate.GateInputs:
    ctx = EvalContext(labels=LABELS, gold=GOLD, teacher=Outputs(labels=TEACHER))
    return gate.GateInputs(ctx=ctx, student=Outputs(labels=student), slices=SLICES, ids=IDS)


def run_checks(*criteria: Criterion, student=STUDENT):
    rubric = RubricSpec(path=Path("r.yaml"), id="r", version=1, criteria=criteria)
    plan = gate.plan_checks("s", rubric, list(SLICES))
    checks = [gate.evaluate_check(p, inputs(student)) for p in plan]
    return {c.id: c for c in gate.finalize(checks, {c.name: c for c in criteria}, strict=False)}


def test_teacher_delta_check_fails_on_the_bad_slice_only():
    checks = run_checks(criterion("gap", min=-0.05))
    bad, good = checks["s::gap[bad]"], checks["s::gap[good]"]
    assert bad.verdict == "fail" and good.verdict == "pass"
    assert bad.value == pytest.approx(-1.0) and bad.n == 16
    assert bad.teacher == 1.0 and bad.student == 0.0
    assert bad.ci[0] <= bad.value <= bad.ci[1]
    assert bad.p_value < 0.05 and bad.q_value is not None
    assert bad.examples == ("x00", "x01", "x02", "x03", "x04")
    assert bad.threshold == {"min": -0.05}
    for part in ("accuracy (student - teacher) = -1.0000", "n=16", "threshold min -0.05", "p=",
                 "q=", "breaches the threshold significantly"):
        assert part in bad.message
    assert good.value == pytest.approx(0.0) and good.message.endswith("meets the threshold")


def test_value_and_ratio_compare_modes():
    checks = run_checks(criterion("acc", compare="value", scope="all", min=0.5),
                        criterion("ratio", compare="teacher_ratio", scope="overall", min=0.9, index=1),
                        criterion("flips", metric="negative_flip_rate", compare="value",
                                  scope="overall", max=0.5, index=2))
    assert checks["s::acc[overall]"].value == pytest.approx(0.6)
    assert checks["s::acc[overall]"].verdict == "pass"
    assert checks["s::acc[bad]"].value == 0.0 and checks["s::acc[bad]"].verdict == "fail"
    assert checks["s::ratio[overall]"].value == pytest.approx(0.6)
    assert checks["s::ratio[overall]"].verdict == "fail"
    assert checks["s::flips[overall]"].value == pytest.approx(0.4)
    assert checks["s::flips[overall]"].verdict == "pass"


def test_below_min_support_is_inconclusive():
    checks = run_checks(criterion("gap", min=-0.05, min_support=20))
    bad = checks["s::gap[bad]"]
    assert bad.verdict == "inconclusive"
    assert "n=16 is below min_support 20" in bad.message


def test_warn_severity():
    checks = run_checks(criterion("gap", min=-0.05, severity="warn"))
    assert checks["s::gap[bad]"].verdict == "warn"


def test_baseline_compare_without_a_baseline_is_an_error():
    checks = run_checks(criterion("vs", compare="baseline_delta", min=-0.01))
    check = checks["s::vs[bad]"]
    assert check.verdict == "error" and check.value is None
    assert "--distill-update-baselines" in check.message


def test_run_level_metric_without_a_measurement_is_an_error():
    checks = run_checks(criterion("speed", metric="latency_improvement", compare="value",
                                  scope="overall", min=2.0))
    assert checks["s::speed[overall]"].verdict == "error"


def test_point_decision_fails_a_small_breach():
    student = STUDENT.copy()
    student[:16] = 0
    student[16] = 1  # one error in "good" (24 examples): delta -1/24
    checks = run_checks(criterion("gap", min=-0.02, decision="point"), student=student)
    assert checks["s::gap[good]"].verdict == "fail"
    significant = run_checks(criterion("gap", min=-0.02), student=student)
    assert significant["s::gap[good]"].verdict == "inconclusive"
