"""The length-controlled win rate against AlpacaEval's ``glm_winrate`` formula, on made data.

AlpacaEval (``alpaca_eval/metrics/glm_winrate.py``, ``length_controlled_v1``) fits
``preference ~ tanh(Δlen / sd) + instruction_difficulty + not_gamed_baseline - 1`` by an
L1-penalised logistic regression (liblinear, no free intercept: the baseline indicator is the
intercept; C chosen by 5-fold GroupKFold cross-validation, or C = 100 without CV), fractional
preferences as two weighted rows, regularised towards gamed baselines it downloads; the LC win
rate is the mean predicted preference with Δlen set to 0. One suite has no instruction
difficulty and no gamed baselines, so the comparison here is that model without those two terms,
fitted the AlpacaEval way (sklearn, L1, C = 100, and L1 with CV over C), against the harness's
unpenalised Newton fit (``harness.judges.length_controlled``). The CV column picks C with
sklearn's default scorer (accuracy), not AlpacaEval's continuous log-loss scorer, so its L1
shrinkage is stronger than theirs: read it as the direction the penalty moves the estimate.

Made data (fixed seeds; outcomes in {0, ½, 1}): a judge that only looks at length, a student that
truly wins 70% whatever the lengths, and both at once. Target: the two estimates agree within
0.01 (the harness's fit is the same model without the penalty).

    python benchmarks/judge_lc.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def made(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_len = rng.integers(200, 400, n).astype(float)
    longer = rng.random(n) < 0.75
    s_len = np.where(longer, t_len + rng.integers(50, 300, n), t_len - rng.integers(50, 150, n))
    if kind == "length only":
        win = np.where(longer, rng.random(n) < 0.8, rng.random(n) < 0.2)
    elif kind == "quality only":
        s_len = t_len + rng.integers(-100, 100, n)
        win = rng.random(n) < 0.7
    else:  # quality and length
        win = np.where(longer, rng.random(n) < 0.85, rng.random(n) < 0.45)
    tie = rng.random(n) < 0.1
    outcome = np.where(tie, 0.5, win.astype(float))
    return outcome, s_len, t_len


def alpaca_style(outcome: np.ndarray, s_len: np.ndarray, t_len: np.ndarray, *,
                 cv: bool) -> float:
    """AlpacaEval's fit of its formula without the instruction and gamed-baseline terms."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import GroupKFold

    delta = s_len - t_len
    x = np.stack([np.tanh(delta / delta.std(ddof=1)), np.ones_like(delta)], 1)
    xs = np.concatenate([x, x])
    ys = np.concatenate([np.ones(len(x)), np.zeros(len(x))])
    ws = np.concatenate([outcome, 1 - outcome])
    groups = np.concatenate([np.arange(len(x)), np.arange(len(x))])
    kwargs = dict(penalty="l1", solver="liblinear", fit_intercept=False, random_state=123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's deprecation of penalty= (same model)
        if cv:
            # the two weighted rows of an example stay in one fold, as AlpacaEval's GroupKFold
            folds = list(GroupKFold(n_splits=5).split(xs, ys, groups))
            model = LogisticRegressionCV(cv=folds, **kwargs)
            model.fit(xs, ys, sample_weight=ws)
        else:
            model = LogisticRegression(C=100, **kwargs)
            model.fit(xs, ys, sample_weight=ws)
    test = np.stack([np.zeros(len(x)), np.ones(len(x))], 1)
    return float(model.predict_proba(test)[:, 1].mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 300 (the benchmark test)")
    args = parser.parse_args()
    from harness.judges import length_controlled

    n = 300 if args.quick else 2000
    worst = 0.0
    print(f"length-controlled win rate, n = {n}: harness vs AlpacaEval-style fits")
    print(f"{'data':>18} {'raw':>7} {'harness':>8} {'90% CI':>17} {'L1 C=100':>9} {'L1 CV':>7}")
    for seed, kind in enumerate(("length only", "quality only", "quality and length")):
        y, s, t = made(kind, n, seed)
        ours, ci = length_controlled(y, s, t, seed=0, n_boot=500 if args.quick else 1000)
        a100, acv = alpaca_style(y, s, t, cv=False), alpaca_style(y, s, t, cv=True)
        assert ours is not None and ci is not None
        worst = max(worst, abs(ours - a100))
        print(f"{kind:>18} {y.mean():7.3f} {ours:8.3f} [{ci[0]:.3f}, {ci[1]:.3f}] "
              f"{a100:9.3f} {acv:7.3f}")
    print(f"target: harness and AlpacaEval's fit (L1, C = 100) within 0.01: largest difference "
          f"{worst:.4f} ({'met' if worst <= 0.01 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
