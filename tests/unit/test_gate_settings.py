"""Suite settings the gate reads: ``discovery`` (bins, on/off) and a ``by:`` slice's support."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import gate
from harness.outputs import EvalContext, Outputs
from harness.spec_types import Criterion, DiscoverySpec, RubricSpec

N = 400
X = np.arange(N, dtype=float)  # one numeric feature, 0..399
BAD = X >= 360  # the student is wrong on the top tenth only


def criterion(name: str = "pockets", scope: str = "discovered", **kw: object) -> Criterion:
    base: dict[str, object] = dict(
        name=name, metric="accuracy", compare="teacher_delta", scope=scope, index=0, min=-0.05,
        max=None, severity="fail", decision="significant", alpha=0.05, confidence=0.90,
        min_support=5, line=None)
    return Criterion(**{**base, **kw})  # type: ignore[arg-type]


def pocket_inputs(discovery: DiscoverySpec) -> gate.GateInputs:
    labels = np.zeros(N, dtype=int)
    ctx = EvalContext(labels=("pos", "neg"), gold=labels, teacher=Outputs(labels=labels))
    return gate.GateInputs(ctx=ctx, student=Outputs(labels=BAD.astype(int)),
                           slices={"overall": np.arange(N)}, ids=[f"x{i}" for i in range(N)],
                           features={"x": X}, discovery=discovery)


def worst_pocket(n_bins: int) -> str:
    rubric = RubricSpec(path=Path("r.yaml"), id="r", version=1, criteria=(criterion(),))
    (planned,) = gate.plan_checks("s", rubric, ["overall"])
    check, found = gate.discovered_check(
        planned, pocket_inputs(DiscoverySpec(min_support=20, n_bins=n_bins)))
    assert check.verdict == "fail"
    return next(p for p in found if p.confirmed).slice


@pytest.mark.parametrize(("n_bins", "pocket"), [(4, "x>=300"), (10, "x>=360")])
def test_discovery_n_bins_sets_the_numeric_cut_points(n_bins: int, pocket: str) -> None:
    assert worst_pocket(n_bins) == pocket


def test_discovery_switched_off_plans_no_traffic_pockets() -> None:
    rubric = RubricSpec(path=Path("r.yaml"), id="r", version=1,
                        criteria=(criterion("drift", scope="traffic"),))
    on = gate.plan_checks("s", rubric, ["overall"], traffic_slices=["lang=de"])
    off = gate.plan_checks("s", rubric, ["overall"], traffic_slices=["lang=de"], pockets=False)
    assert [p.slice for p in on] == ["traffic", "traffic:lang=de", gate.TRAFFIC_POCKETS]
    assert [p.slice for p in off] == ["traffic", "traffic:lang=de"]


def test_a_slices_own_min_support_is_planned_and_decides() -> None:
    rubric = RubricSpec(path=Path("r.yaml"), id="r", version=1,
                        criteria=(criterion("gap", scope="slices", decision="point"),))
    plan = gate.plan_checks("s", rubric, ["overall", "lang=de", "short"],
                            slice_support={"lang=de": 100})
    assert [(p.slice, p.min_support) for p in plan] == [("lang=de", 100), ("short", None)]
    labels = np.zeros(N, dtype=int)
    ctx = EvalContext(labels=("pos", "neg"), gold=labels, teacher=Outputs(labels=labels))
    inputs = gate.GateInputs(ctx=ctx, student=Outputs(labels=np.ones(N, dtype=int)),
                             slices={"overall": np.arange(N), "lang=de": np.arange(50),
                                     "short": np.arange(50, 100)}, ids=[f"x{i}" for i in range(N)])
    checks = gate.finalize([gate.evaluate_check(p, inputs) for p in plan],
                           {"gap": rubric.criteria[0]}, strict=False)
    assert [c.verdict for c in checks] == ["inconclusive", "fail"]  # 50 < 100; 50 >= 5
    assert "n=50 is below min_support 100" in checks[0].message
