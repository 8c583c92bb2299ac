"""Pocket discovery on planted pockets: power against the oracle, false discoveries, time, memory.

Synthetic paired outcomes: the teacher is right on 85% of examples; the student loses 4% of
those and wins back as many of the teacher's misses, so the student-minus-teacher delta is 0
everywhere except in the planted pockets, where the student loses more, by a gap of
``--gaps`` times the margin (default 2x and 3x: delta = -0.10 and -0.15 against a threshold
of -0.05).

What it prints:

* power against the oracle, per planted size (n bucket) and gap: a planted pocket counts as
  found when a *confirmed* pocket uses exactly its features and its rows overlap the planted
  rows with Jaccard >= 0.8 (a numeric cut can land one integer off the planted one).
  Checked against what the search confirms (seeds 0-59, 2x): of the 460 findings BH confirmed
  before merging, 458 match a planted pocket by this rule; the other two are one seed's
  one-predicate parent of a planted pocket (Jaccard 0.49, found in both directions), a
  different description of the pocket, so no correct discovery is lost to the rule. The
  oracle knows the pocket in advance and runs ONE test of it on all its rows (the same
  corrected paired test ``find_pockets`` confirms with, the same alpha; no search, no split,
  no multiplicity); its power is computed by simulating the generator on the pocket's rows
  (``--oracle-draws`` draws). The figure judged is discovery recall / oracle power: what the
  search loses to the search itself, whatever the sample size allows. (The oracle's hits on
  the very draws the search saw are printed too.) Two caps follow from the design rather
  than the search: ``[half rows]``, the oracle's test on half the rows (a search that
  confirms on one held-out half), and ``[cross-fit cap]``, what a perfect search reaches when
  each of ``find_pockets``' K folds (``_FOLDS``) confirms at alpha / K what a search of the
  other folds found, with the search never missing: ``1 - (1 - power(n / K, alpha / K))^K``.
  (It is no bound on the real search, which needs the pocket visible in the folds it
  searches: the figure for K = 3 is below the one for K = 2, the recall above it.)
  Targets: ratio >= 0.60 at gap 2x for n 400-799 and >= 0.90 for n >= 800; >= 0.95 at gap 3x
  for n >= 400.
* false discoveries: confirmed pockets whose TRUE delta (the generator's expected delta over
  the pocket's rows) meets the threshold, i.e. the null hypothesis was true. Pooled over
  seeds and gaps and the null runs below (where every confirmed pocket is false), as a share
  of all confirmed pockets. Target <= 5%.
* data carving, side by side on the same draws (``carving``): the selection-adjusted test on
  the full data that cross-fitting is compared with -- every slice of one or two predicates
  selected by its own shortfall z on half A, tested on all its rows conditional on that
  selection, BH (no proof under this dependence) and Benjamini-Yekutieli (valid) over the
  selected slices. Recall on the two-predicate planted pockets next to cross-fitting's,
  and its false rejections over the planted and null runs.
* null data (nothing planted, ``--null-seeds`` seeds): target no confirmed pocket in >= 95%
  of the seeds (19 of 20).
* time and peak memory (``ru_maxrss`` of a fresh subprocess per measurement, so one
  measurement cannot inherit another's peak; it includes the input data, whose share is
  printed too) at ``--rows`` x ``--features`` x ``--predicates``.
* SliceLine (the ``sliceline`` package, which is not a project dependency) on
  ``--sliceline-rows`` x ``--sliceline-features`` at 2 predicates, run under its own
  interpreter. Create it with::

      python3 -m venv /tmp/slvenv
      /tmp/slvenv/bin/pip install sliceline numpy scipy scikit-learn   # numba: optional

  SliceLine gets the same features, numeric ones cut into the same quantile bins (it needs
  categorical input), and as its error vector the NEGATIVE-FLIP indicator (teacher right
  and student wrong): SliceLine wants a non-negative error per example, and the flips the
  student loses are what a pocket is made of. (``teacher - student`` clipped at 0 is the
  same vector for 0/1 correctness.) Its planted pocket is larger (1/32 of the rows): with
  SliceLine's own score a small slice with a 4x error rate scores below zero and is never
  reported, which would make the comparison pointless.

Usage: ``python benchmarks/pocket_discovery.py [--rows 1000000 --features 50 --predicates 3]
[--gaps 2,3] [--seeds 30] [--first-seed 0] [--null-seeds 20] [--skip-sliceline]
[--sliceline-python /tmp/slvenv/bin/python]``; ``--quick`` (what CI runs, seconds): small data,
two seeds, no scale or SliceLine sections; the targets are printed but not judged (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEACHER_ACC = 0.85
ALPHA = 0.05  # find_pockets' default, and the oracle's
LOSE = 0.04  # P(student wrong | teacher right) outside pockets
WIN = LOSE * TEACHER_ACC / (1 - TEACHER_ACC)  # P(student right | teacher wrong): delta 0

# planted pockets for the recall runs, as the cardinalities of the categorical features they
# use ("n" is a numeric feature cut at its first quartile); the product sets the size
RECALL_POCKETS = [(32, 32), (16, 32), (4, 8, 8), ("n", 64), (2, 64), (2, 4, 8)]
SLICELINE_POCKETS = [(4, 8)]
# data carving (``carving``): selection z on half A, and the rows a slice needs in each half
CARVE_Z = 1.0
CARVE_MIN_HALF = 100


def cardinalities(n_features: int) -> list[int | str]:
    """Feature kinds: even positions categorical (cycling cardinalities), odd numeric."""
    cycle = [2, 4, 8, 16, 32, 64, 4, 8, 16, 32]
    out: list[int | str] = []
    for j in range(n_features):
        out.append(cycle[(j // 2) % len(cycle)] if j % 2 == 0 else ("int" if j % 4 == 1 else "float"))
    return out


def make_data(rows: int, n_features: int, seed: int, pockets: list[tuple]) -> dict:
    """Features, paired outcomes, the planted pockets' masks and each row's true delta."""
    rng = np.random.default_rng(seed)
    kinds = cardinalities(n_features)
    features: dict[str, np.ndarray] = {}
    cat_codes: dict[str, np.ndarray] = {}
    for j, kind in enumerate(kinds):
        if kind == "int":
            features[f"x{j}"] = rng.integers(0, 100, rows)
        elif kind == "float":
            features[f"x{j}"] = rng.normal(size=rows)
        else:
            codes = rng.integers(0, int(kind), rows)
            cat_codes[f"c{j}"] = codes
            labels = np.array([f"v{k}" for k in range(int(kind))])
            features[f"c{j}"] = labels[codes]
    teacher = (rng.random(rows) < TEACHER_ACC).astype(np.float64)
    u = rng.random(rows)
    planted = []
    used: set[str] = set()
    for spec in pockets:
        mask = np.ones(rows, dtype=bool)
        preds = []
        for card in spec:
            if card == "n":
                names = [n for n, k in zip(features, kinds, strict=True) if k == "int" and n not in used]
                name = names[rng.integers(len(names))]
                mask &= features[name] < 25
                preds.append((name, "lt", 25))
            else:
                names = [n for n, k in zip(features, kinds, strict=True) if k == card and n not in used]
                if not names:
                    names = [n for n, k in zip(features, kinds, strict=True) if k == card]
                name = names[rng.integers(len(names))]
                value = int(rng.integers(int(card)))
                mask &= cat_codes[name] == value
                preds.append((name, "eq", f"v{value}"))
            used.add(name)
        planted.append({"features": sorted(p[0] for p in preds), "predicates": preds, "mask": mask})
    return {"features": features, "teacher": teacher, "u": u, "planted": planted, "kinds": kinds}


def outcomes(data: dict, margin: float, gap_multiple: float) -> tuple[np.ndarray, np.ndarray]:
    """Student outcomes and each row's expected (true) student - teacher delta."""
    t, u = data["teacher"], data["u"]
    in_pocket = np.zeros(t.shape[0], dtype=bool)
    for p in data["planted"]:
        in_pocket |= p["mask"]
    # in a pocket the student loses `extra` more of the teacher's right answers
    extra = gap_multiple * margin / TEACHER_ACC
    lose = np.where(in_pocket, LOSE + extra, LOSE)
    s = t.copy()
    s[(t == 1) & (u < lose)] = 0
    s[(t == 0) & (u < WIN)] = 1
    true_delta = np.where(in_pocket, -gap_multiple * margin, 0.0)
    return s, true_delta


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def carving(data: dict, s: np.ndarray, true_delta: np.ndarray, margin: float, seed: int,
            min_support: int, select_z: float = CARVE_Z, min_half: int = CARVE_MIN_HALF) -> dict:
    """Data carving on the full data, the comparison ``find_pockets``' cross-fitting must beat.

    Every slice of one or two predicates (exhaustive, so that a slice is selected by its own
    statistic alone) with at least ``min_half`` rows in each half is selected when its
    shortfall z on half A (the same seeded halves as ``find_pockets``) is at least
    ``select_z``, and tested on ALL its rows conditional on that selection: with
    ``Z_full = (sqrt(n_A) Z_A + sqrt(n_B) Z_B) / sqrt(n)`` and ``Z_A, Z_B`` independent
    standard normal at the null's boundary, ``p = P(Z_full >= z | Z_A >= select_z)``, a 1-D
    integral. BH over the selected slices (no proof of FDR control: the slices share rows
    and the selected set is random) and Benjamini-Yekutieli (valid under any dependence).
    No ranking, parent or redundancy rule may come before the test (the conditional law
    would then be wrong), and three-predicate slices are left out (the level-3 beam is a
    ranking). Counted per planted two-predicate pocket: its own slice rejected, before any
    merging for a report (so an upper bound on what carving would report).
    """
    sys.path.insert(0, str(ROOT))
    from scipy import stats

    from harness.pockets import _encode, _gap, _mask, _Search, folds

    g, m = _gap(s, data["teacher"], threshold=-margin, bound="min", compare="teacher_delta")
    feats = [f for name, col in data["features"].items()
             if (f := _encode(name, np.asarray(col), min_support, 4)) is not None]
    fold_of = folds(g.shape[0], seed, 2)
    halves = (np.flatnonzero(fold_of == 0), np.flatnonzero(fold_of == 1))
    searches = []
    for rows in halves:
        search = _Search(feats, g[rows], rows, m, 1)
        search.run(2, examine=1)
        searches.append(search)
    keys, st_a, st_b = [], [], []
    for f, level in enumerate(searches[0].level1):
        for p in range(level.shape[0]):
            keys.append(((f, p),))
            st_a.append(level[p])
            st_b.append(searches[1].level1[f][p])
    for (f, h), level in searches[0].level2.items():
        other = searches[1].level2[(f, h)]
        for pf in range(level.shape[0]):
            for ph in range(level.shape[1]):
                keys.append(((f, pf), (h, ph)))
                st_a.append(level[pf, ph])
                st_b.append(other[pf, ph])
    a, b = np.array(st_a), np.array(st_b)
    full = a + b
    n_a, n_b, n = a[:, 0], b[:, 0], full[:, 0]
    usable = (n >= min_support) & (n_a >= min_half) & (n_b >= min_half)
    mean = full[:, 1] / np.maximum(n, 1)
    sd = np.sqrt(np.maximum(full[:, 2] / np.maximum(n, 1) - mean**2, 1e-3))
    z_a = (m * n_a - a[:, 1]) / (sd * np.sqrt(np.maximum(n_a, 1)))
    z_full = (m * n - full[:, 1]) / (sd * np.sqrt(np.maximum(n, 1)))
    selected = np.flatnonzero(usable & (z_a >= select_z))
    grid = select_z + np.linspace(0.0, 10.0, 801)[None, :]
    za, zf = np.sqrt(n_a[selected])[:, None], z_full[selected][:, None]
    inner = stats.norm.sf((zf * np.sqrt(n[selected])[:, None] - za * grid)
                          / np.sqrt(n_b[selected])[:, None])
    p_values = np.clip(np.trapezoid(stats.norm.pdf(grid) * inner, grid, axis=1)
                       / stats.norm.sf(select_z), 0.0, 1.0)
    names = [f.name for f in feats]
    out: dict = {"selected": int(selected.size)}
    for method in ("bh", "by"):
        q = (stats.false_discovery_control(p_values, method=method) if selected.size
             else np.zeros(0))
        rejected = selected[q < ALPHA]
        masks = {int(i): _mask(feats, keys[i]) for i in rejected}
        out[f"{method}_rejected"] = len(masks)
        out[f"{method}_false"] = int(sum(true_delta[mk].mean() >= -margin for mk in masks.values()))
        hits = []
        for planted in data["planted"]:
            pm = planted["mask"]
            hits.append(len(planted["predicates"]) == 2 and any(
                sorted(names[fi] for fi, _ in keys[i]) == planted["features"]
                and (pm & mk).sum() / max((pm | mk).sum(), 1) >= 0.8 for i, mk in masks.items()))
        out[f"{method}_found"] = hits
    return out


# --- workers (run in a fresh subprocess each) --------------------------------------------------
def worker_ours(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT))
    from harness.pockets import find_pockets, paired_p_value

    pockets = {"recall": RECALL_POCKETS, "scale": RECALL_POCKETS, "sliceline": SLICELINE_POCKETS,
               "null": []}[args.which]
    data = make_data(args.rows, args.features, args.seed, pockets)
    s, true_delta = outcomes(data, args.margin, args.gap_multiple)
    before = rss_mb()
    start = time.perf_counter()
    found = find_pockets(
        data["features"],
        s,
        data["teacher"],
        threshold=-args.margin,
        max_predicates=args.predicates,
        min_support=args.min_support,
        seed=args.seed,
    )
    elapsed = time.perf_counter() - start
    peak = rss_mb()
    confirmed = [p for p in found if p.confirmed]
    hits, false = [], 0
    masks = []
    for p in confirmed:
        mask = np.ones(args.rows, dtype=bool)
        for pr in p.predicates:
            col = data["features"][pr.feature]
            mask &= {"eq": col == pr.value, "lt": col < pr.value, "gte": col >= pr.value}[pr.op]
        masks.append(mask)
        if true_delta[mask].mean() >= -args.margin:
            false += 1
    for planted in data["planted"]:
        pm = planted["mask"]
        ok = False
        for p, mask in zip(confirmed, masks, strict=True):
            same = sorted({pr.feature for pr in p.predicates}) == planted["features"]
            jac = (pm & mask).sum() / max((pm | mask).sum(), 1)
            ok = ok or bool(same and jac >= 0.8)
        # the oracle on this very draw: one test of the known pocket on all its rows
        oracle = paired_p_value(s[pm] - data["teacher"][pm], -args.margin, discrete=True)
        hits.append({"n": int(pm.sum()), "found": ok, "oracle": bool(oracle < ALPHA),
                     "name": str(planted["predicates"]), "two": len(planted["predicates"]) == 2})
    carved: dict = {}
    if args.which in ("recall", "null"):  # the side-by-side comparison, not the scale runs
        carved = carving(data, s, true_delta, args.margin, args.seed, args.min_support)
        for k, h in enumerate(hits):
            h["carved_bh"], h["carved_by"] = carved["bh_found"][k], carved["by_found"][k]
    return {
        "seconds": elapsed,
        "peak_mb": peak,
        "data_mb": before,
        "confirmed": len(confirmed),
        "false": false,
        "planted": hits,
        "carving": {k: v for k, v in carved.items() if not k.endswith("found")},
        "pockets": [f"{p.slice} n={p.n} delta={p.delta:.3f} q={p.q_value:.2g}" for p in confirmed],
    }


def worker_sliceline(args: argparse.Namespace) -> dict:
    from sliceline.slicefinder import Slicefinder

    data = make_data(args.rows, args.features, args.seed, SLICELINE_POCKETS)
    s, _ = outcomes(data, args.margin, args.gap_multiple)
    t = data["teacher"]
    cols = []
    for col in data["features"].values():
        if col.dtype.kind in "iuf":  # the same quantile bins find_pockets uses
            edges = np.unique(np.quantile(col, [0.25, 0.5, 0.75], method="higher"))
            cols.append(np.searchsorted(edges, col, side="right"))
        else:
            cols.append(np.unique(col, return_inverse=True)[1].ravel())
    x = np.stack(cols, axis=1)
    errors = ((t == 1) & (s == 0)).astype(np.float64)  # negative flips
    before = rss_mb()
    start = time.perf_counter()
    sf = Slicefinder(alpha=0.95, k=5, max_l=2, min_sup=args.min_support, verbose=False)
    sf.fit(x, errors)
    elapsed = time.perf_counter() - start
    peak = rss_mb()
    names = list(data["features"])
    planted = data["planted"][0]
    want = {}
    for name, _, value in planted["predicates"]:
        labels = np.unique(data["features"][name])
        want[names.index(name)] = int(np.searchsorted(labels, value))
    top = []
    found = False
    for row in np.asarray(sf.top_slices_):
        got = {j: int(v) for j, v in enumerate(row) if v is not None and v == v}
        top.append({names[j]: v for j, v in got.items()})
        found = found or got == want
    return {"seconds": elapsed, "peak_mb": peak, "data_mb": before, "found": found, "top": top}


def run_worker(python: str, which: str, args: argparse.Namespace, rows: int, features: int,
               predicates: int, seed: int, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh interpreter; kill it above ``--mem-cap-gb`` of RSS."""
    cmd = [python, __file__, "--worker", which, "--rows", str(rows), "--features", str(features),
           "--predicates", str(predicates), "--seed", str(seed), "--margin", str(args.margin),
           "--gap-multiple", str(args.gap_multiple), "--min-support", str(args.min_support),
           "--which", args.which_setting]
    # the machine is shared: a runaway measurement is stopped, not allowed to swap others out
    cap_kb = args.mem_cap_gb * 1024 * 1024
    start = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        while proc.poll() is None:
            time.sleep(0.2)
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                rss = int(next(ln.split()[1] for ln in status.splitlines()
                               if ln.startswith("VmRSS")))
            except (OSError, StopIteration):
                rss = 0
            if rss > cap_kb or time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                return {"error": f"stopped at {rss / 1048576:.1f} GB RSS after "
                        f"{time.monotonic() - start:.0f} s (cap {args.mem_cap_gb} GB, "
                        f"{timeout:.0f} s)"}
        out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(out.strip().splitlines()[-1]))


def oracle_power(n: int, margin: float, gap_multiple: float, draws: int, seed: int = 0,
                 alpha: float = ALPHA) -> float:
    """Power of ONE one-sided test at ``ALPHA`` on all ``n`` rows of a pocket known in advance.

    The test is the one ``find_pockets`` confirms with (``paired_p_value``: the corrected
    Tango score test at the margin); the power is its rejection rate on ``draws`` simulated
    pockets of the generator. No search, no split, no multiplicity: an upper bound on what
    any honest search can find.
    """
    sys.path.insert(0, str(ROOT))
    from harness.stats import paired_proportion_p

    extra = gap_multiple * margin / TEACHER_ACC
    p_lose = TEACHER_ACC * (LOSE + extra)  # teacher right, student wrong
    p_win = (1 - TEACHER_ACC) * WIN  # student right, teacher wrong
    cells = np.random.default_rng([seed, n]).multinomial(n, [p_lose, p_win, 1 - p_lose - p_win],
                                                         size=draws)
    hits = sum(paired_proportion_p(int(b), int(c), n, -margin) < alpha for b, c, _ in cells)
    return hits / draws


def candidate_space(rows: int, features: int, predicates: int, min_support: int) -> int:
    """How many slices of up to ``predicates`` predicates the search can choose from.

    Counted from the candidate predicates ``find_pockets`` builds for each feature of the
    benchmark's data (its private ``_encode``): every conjunction on distinct features.
    """
    sys.path.insert(0, str(ROOT))
    from harness.pockets import _encode

    data = make_data(rows, features, 0, [])
    sizes = [len(f.preds) for name, col in data["features"].items()
             if (f := _encode(name, np.asarray(col), min_support, 4)) is not None]
    # elementary symmetric sums: e_k = number of k-feature conjunctions
    e = [1] + [0] * predicates
    for k in sizes:
        for j in range(predicates, 0, -1):
            e[j] += e[j - 1] * k
    return sum(e[1:])


BUCKETS = (("200-399", 200, 400), ("400-799", 400, 800), ("800-1599", 800, 1600),
           ("1600+", 1600, 10**12))


def bucket_of(n: int) -> str | None:
    return next((name for name, lo, hi in BUCKETS if lo <= n < hi), None)


def target_of(gap: float, lo: int) -> float | None:
    """The ratio a band must reach at a gap (None: not judged)."""
    if lo < 400:
        return None
    if gap >= 2.5:
        return 0.95
    return 0.60 if lo < 800 else 0.90


def power_section(args: argparse.Namespace, py: str) -> tuple[bool, int, int]:
    """Recall / oracle power per n bucket and gap; returns (targets met, confirmed, false)."""
    ok_all = True
    confirmed = false = 0
    oracle_cache: dict[tuple[int, float, float], float] = {}
    space = candidate_space(args.recall_rows, args.recall_features, args.predicates,
                            args.min_support)
    planted_count = len(RECALL_POCKETS)
    # a holdout-free family: every candidate slice tested on all rows, BH over the whole
    # space; with every planted pocket rejected, BH's level for them is alpha * P / M
    free_alpha = ALPHA * planted_count / space
    from harness.pockets import _FOLDS

    def power_of(n: int, gap: float, alpha: float = ALPHA) -> float:
        key = (n, gap, alpha)
        if key not in oracle_cache:
            oracle_cache[key] = oracle_power(n, args.margin, gap, args.oracle_draws, alpha=alpha)
        return oracle_cache[key]
    for gap in args.gap_list:
        args.gap_multiple = gap
        args.which_setting = "recall"
        print(f"\n== power against the oracle, gap {gap:g}x the margin (delta "
              f"{-gap * args.margin:+.3f}): {args.recall_rows} rows x {args.recall_features} "
              f"features, {args.predicates} predicates, {args.seeds} seeds from "
              f"{args.first_seed}")
        found: dict[str, list[bool]] = {}
        same_draw: dict[str, list[bool]] = {}
        power: dict[str, list[float]] = {}
        half: dict[str, list[float]] = {}
        cross: dict[str, list[float]] = {}
        free: dict[str, list[float]] = {}
        sizes: dict[str, list[int]] = {}
        two: dict[str, list[tuple[bool, bool, bool]]] = {}  # cross-fit, carving BH, BY
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            r = run_worker(py, "ours", args, args.recall_rows, args.recall_features,
                           args.predicates, seed)
            if "error" in r:
                print(f"seed {seed}: {r['error']}")
                ok_all = False
                continue
            confirmed += r["confirmed"]
            false += r["false"]
            for key, value in r["carving"].items():
                args.carving_totals[key] = args.carving_totals.get(key, 0) + value
            hit = sum(h["found"] for h in r["planted"])
            print(f"seed {seed}: {hit}/{len(r['planted'])} planted found (oracle on this draw "
                  f"{sum(h['oracle'] for h in r['planted'])}), {r['confirmed']} confirmed, "
                  f"{r['false']} false, {r['seconds']:.1f} s")
            for h in r["planted"]:
                bucket = bucket_of(h["n"])
                if bucket is None:
                    continue
                found.setdefault(bucket, []).append(h["found"])
                same_draw.setdefault(bucket, []).append(h["oracle"])
                power.setdefault(bucket, []).append(power_of(h["n"], gap))
                half.setdefault(bucket, []).append(power_of(h["n"] // 2, gap))
                each = power_of(h["n"] // _FOLDS, gap, ALPHA / _FOLDS)
                cross.setdefault(bucket, []).append(1 - (1 - each) ** _FOLDS)
                free.setdefault(bucket, []).append(power_of(h["n"], gap, free_alpha))
                sizes.setdefault(bucket, []).append(h["n"])
                if h["two"]:
                    two.setdefault(bucket, []).append((h["found"], h["carved_bh"], h["carved_by"]))
        print(f"  {'planted n':>9}  {'pockets':>7}  {'mean n':>6}  {'recall':>6}  "
              f"{'oracle power':>12}  {'oracle, same draws':>18}  ratio   "
              f"{'[half rows]':>11}  {'[cross-fit cap]':>15}  {'[holdout-free]':>14}")
        for name, lo, _ in BUCKETS:
            if name not in found:
                continue
            recall = sum(found[name]) / len(found[name])
            best = sum(power[name]) / len(power[name])
            ratio = recall / best if best > 0 else float("nan")
            target = target_of(gap, lo)
            met = target is not None and ratio >= target
            mark = (f"target >= {target:.2f}: {verdict(met)}" if target is not None
                    else "(not judged)")
            print(f"  {name:>9}  {len(found[name]):>7}  {sum(sizes[name]) / len(sizes[name]):>6.0f}"
                  f"  {recall:>6.0%}  {best:>12.0%}  "
                  f"{sum(same_draw[name]) / len(same_draw[name]):>18.0%}  {ratio:.2f}    "
                  f"{sum(half[name]) / len(half[name]) / best:>11.2f}  "
                  f"{sum(cross[name]) / len(cross[name]) / best:>15.2f}  "
                  f"{sum(free[name]) / len(free[name]) / best:>14.2f}  {mark}")
            if target is not None:
                ok_all &= met
        print(f"  data carving (benchmarks' carving(): two-predicate pockets only, selection z >= "
              f"{CARVE_Z:g} on half A, >= {CARVE_MIN_HALF} rows per half, test on all rows given "
              "the selection):")
        print(f"  {'planted n':>9}  {'pockets':>7}  {'cross-fit recall':>16}  {'carving BH':>10}  "
              f"{'carving BY':>10}")
        for name, _, _ in BUCKETS:
            if name in two:
                rows = two[name]
                print(f"  {name:>9}  {len(rows):>7}  "
                      + "  ".join(f"{sum(r[k] for r in rows) / len(rows):>{w}.0%}"
                                  for k, w in ((0, 16), (1, 10), (2, 10))))
    print("  [half rows]: the oracle's test on half the pocket's rows, over its power on all "
          "of them: the most any search that confirms on a held-out half can reach")
    print(f"  [cross-fit cap]: each of {_FOLDS} folds confirming at alpha/{_FOLDS} what a perfect "
          f"search of the others found: 1 - (1 - power(n/{_FOLDS}, alpha/{_FOLDS}))^{_FOLDS}, "
          "over the oracle")
    print(f"  [holdout-free]: the same test on all rows at BH's level for {planted_count} true "
          f"pockets among all {space:,} candidate slices (alpha x {planted_count} / {space:,}), "
          "over the oracle's power: a search without a held-out half")
    return ok_all, confirmed, false


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--predicates", type=int, default=3)
    ap.add_argument("--skip-sliceline", action="store_true")
    ap.add_argument("--sliceline-python", default="/tmp/slvenv/bin/python")
    ap.add_argument("--sliceline-rows", type=int, default=1_000_000)
    ap.add_argument("--sliceline-features", type=int, default=10)
    ap.add_argument("--recall-rows", type=int, default=250_000)
    ap.add_argument("--recall-features", type=int, default=20)
    # one 400-799 pocket per seed: 30 seeds put 30 pockets behind that band's ratio
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--null-seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed.. (recall) and 100 + first-seed.. (null): fresh draws "
                         "for settings chosen on the default ones")
    ap.add_argument("--oracle-draws", type=int, default=4000)
    ap.add_argument("--margin", type=float, default=0.05, help="threshold is -margin")
    ap.add_argument("--gaps", default="2,3",
                    help="gaps of the planted pockets, in multiples of the margin (power section)")
    ap.add_argument("--gap-multiple", type=float, default=2.0,
                    help="gap of the planted pockets in the scale and SliceLine sections")
    ap.add_argument("--quick", action="store_true",
                    help="seconds: small data, 2 seeds, no scale/SliceLine; targets not judged")
    ap.add_argument("--min-support", type=int, default=30)
    ap.add_argument("--skip-recall", action="store_true")
    ap.add_argument("--mem-cap-gb", type=float, default=14.0,
                    help="stop a measurement whose RSS passes this (shared machine)")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=["ours", "sliceline"], help=argparse.SUPPRESS)
    ap.add_argument("--which", default="recall", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        result = worker_ours(args) if args.worker == "ours" else worker_sliceline(args)
        print(json.dumps(result))
        return 0
    args.gap_list = [float(g) for g in args.gaps.split(",")]
    args.carving_totals = {}
    if args.quick:
        args.recall_rows, args.recall_features, args.predicates = 60_000, 12, 2
        args.seeds, args.null_seeds, args.oracle_draws = 1, 2, 500
        args.skip_scale = args.skip_sliceline = True

    py = sys.executable
    print(f"threshold delta >= {-args.margin:+.3f}, alpha {ALPHA}; pockets planted at "
          + ", ".join(f"delta {-g * args.margin:+.3f} ({g:g}x the margin)" for g in args.gap_list))
    ok_all = True
    if not args.skip_recall:
        gap_multiple = args.gap_multiple
        met, confirmed, false = power_section(args, py)
        args.gap_multiple = gap_multiple
        ok_all &= met

        # nothing planted: every confirmed pocket is a false discovery
        args.which_setting = "null"
        null_confirmed = []
        for seed in range(args.null_seeds):
            r = run_worker(py, "ours", args, args.recall_rows, args.recall_features,
                           args.predicates, 100 + args.first_seed + seed)
            null_confirmed.append(r.get("confirmed", -1))
            for key, value in r.get("carving", {}).items():
                args.carving_totals[key] = args.carving_totals.get(key, 0) + value
        clean = sum(c == 0 for c in null_confirmed)
        print(f"\nnull data (nothing planted), {args.null_seeds} seeds: confirmed pockets per seed "
              f"{null_confirmed}; {clean}/{args.null_seeds} without any  target no pocket in "
              f">= 95% of seeds: {verdict(clean >= 0.95 * args.null_seeds)}")
        ok_all &= clean >= 0.95 * args.null_seeds
        null_false = sum(max(c, 0) for c in null_confirmed)
        false_all, confirmed_all = false + null_false, confirmed + null_false
        fdp = false_all / max(confirmed_all, 1)
        print(f"false discoveries (planted runs, all gaps: {false}/{confirmed}; with the null "
              f"runs: {false_all}/{confirmed_all}) = {fdp:.1%}  target <= 5%: "
              f"{verdict(fdp <= 0.05)}")
        ok_all &= fdp <= 0.05
        tot = args.carving_totals
        print(f"data carving, planted and null runs: BH {tot.get('bh_false', 0)} false of "
              f"{tot.get('bh_rejected', 0)} rejected, BY {tot.get('by_false', 0)} of "
              f"{tot.get('by_rejected', 0)} (slices before merging; "
              f"{tot.get('selected', 0)} selected in all)")

    ours_small = None
    if not args.skip_scale:
        print(f"\n== scale: {args.rows} rows x {args.features} features, {args.predicates} "
              "predicates (fresh subprocess)")
        args.which_setting = "scale"  # the recall pockets, without the carving comparison
        r = run_worker(py, "ours", args, args.rows, args.features, args.predicates, 0)
        if "error" in r:
            print(r["error"])
            ok_all = False
        else:
            print(f"find_pockets: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB "
                  f"(input data {r['data_mb']:.0f} MB); {r['confirmed']} confirmed, "
                  f"planted found {sum(h['found'] for h in r['planted'])}/{len(r['planted'])}")
            ok = r["seconds"] < 60 and r["peak_mb"] < 4096
            print(f"target < 60 s and < 4 GB: {verdict(ok)}")
            ok_all &= ok

    if not args.skip_sliceline:
        print(f"\n== vs SliceLine: {args.sliceline_rows} rows x {args.sliceline_features} "
              "features, 2 predicates, planted pocket 1/32 of the rows")
        args.which_setting = "sliceline"
        ours_small = run_worker(py, "ours", args, args.sliceline_rows, args.sliceline_features,
                                2, 0)
        if not os.path.exists(args.sliceline_python):
            print(f"no SliceLine interpreter at {args.sliceline_python}; create it with:\n"
                  "  python3 -m venv /tmp/slvenv && /tmp/slvenv/bin/pip install sliceline "
                  "numpy scipy scikit-learn\nor pass --sliceline-python, or --skip-sliceline")
            return 1
        sl = run_worker(args.sliceline_python, "sliceline", args, args.sliceline_rows,
                        args.sliceline_features, 2, 0)
        for label, r in (("find_pockets", ours_small), ("sliceline", sl)):
            if "error" in r:
                print(f"{label}: {r['error']}")
                continue
            found = r.get("found")
            if found is None:
                found = all(h["found"] for h in r["planted"])
            print(f"{label:>12}: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB "
                  f"(input data {r['data_mb']:.0f} MB), planted pocket found: {found}")
        if "error" not in ours_small and "error" not in sl:
            speed = sl["seconds"] / ours_small["seconds"]
            mem = sl["peak_mb"] / ours_small["peak_mb"]
            mem_own = (sl["peak_mb"] - sl["data_mb"]) / max(
                ours_small["peak_mb"] - ours_small["data_mb"], 1.0)
            print(f"speed-up {speed:.1f}x  target >= 5x: {verdict(speed >= 5)}")
            print(f"memory: peak RSS ratio {mem:.1f}x, above-input ratio {mem_own:.1f}x  "
                  f"target >= 5x (peak RSS): {verdict(mem >= 5)}")
            ok_all &= speed >= 5 and mem >= 5
        else:
            ok_all = False
    print(f"\nall targets of the sections run: {verdict(ok_all)}")
    if args.quick:
        print("(quick mode: figures from too little data to judge; exit 0 whatever they say)")
        return 0
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
