"""A big suite on prediction files: ``distill run`` and collection timed against a columnar floor.

Builds the suite that teams who gate on logs have: ``--rows`` (default 10^6) labelled examples
with predictions saved by a batch job — data, teacher and student files (JSONL, or Parquet with
``--format parquet``), five features, three ``by:`` slices, discovery over the five features, and
a rubric with a flip-rate check. A pocket is planted: on ``lang=de & channel=email`` the student
loses ``--pocket-gap`` of accuracy against the teacher (everywhere else the student matches the
teacher's accuracy, flips balanced).

It times, each in its own process (peak memory is that process's ``ru_maxrss``, read through a
tiny launcher so one measurement cannot inherit another's peak):

* ``distill run SUITE`` on an empty cache (cold), and again on the same cache (warm);
* ``pytest --collect-only --distill-suite SUITE`` (what an IDE runs), and whether it printed a
  verdict although nothing ran;
* the **floor**, in the same run: ``pyarrow`` reads the three files, joins the teacher's and the
  student's labels onto the data by id, and computes the per-slice means of both models'
  correctness (``Table.group_by(...).aggregate``) over overall and the three ``by:`` slices.

Targets (issue 22): ``distill run`` <= 3x the floor and <= 1 GB peak; ``--collect-only`` <= 2 s;
the planted pocket found (a confirmed pocket on exactly ``lang=de & channel=email``).

    python benchmarks/big_suite.py [--rows 1000000] [--format jsonl|parquet] [--keep DIR]
        [--harness DIR]    # DIR: another tree's harness (e.g. `git archive BASE | tar -x -C DIR`)
    python benchmarks/big_suite.py --quick     # CI: 20,000 rows; targets printed, not judged

Give the load average (printed) with any figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["billing", "bug", "account", "feature"]
FEATURES = {"lang": ["en", "de", "fr", "es", "it", "nl"], "channel": ["email", "chat", "phone", "web"],
            "tier": ["free", "pro", "team", "enterprise"],
            "device": ["ios", "android", "desktop", "tablet", "tv"]}
POCKET = {"lang": "de", "channel": "email"}
TEACHER_ACC = 0.90
FLIP = 0.03  # outside the pocket: P(student wrong | teacher right); the reverse balances it
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 1024.0
TARGET_COLLECT_S = 2.0
QUICK_ROWS = 20_000

SUITE = """\
schema_version: 1
name: big
version: "1"
task: classification
data:
  path: {data}
  id: id
  input: text
  label: label
  features: [lang, channel, tier, device, n_words]
labels: [{labels}]
teacher: {{type: predictions, path: {teacher}}}
student: {{type: predictions, path: {student}}}
rubric: rubric.yaml
baseline: baseline.json
slices:
  - by: lang
  - by: channel
  - by: tier
discovery:
  features: [lang, channel, tier, device, n_words]
  max_predicates: 2
  min_support: 200
"""

RUBRIC = """\
schema_version: 1
id: big-gate
version: 1
defaults: {alpha: 0.05, min_support: 30, decision: significant}
criteria:
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.95, scope: overall}
  - {name: slice_gap, metric: accuracy, compare: teacher_delta, min: -0.05, scope: slices}
  - {name: pockets, metric: accuracy, compare: teacher_delta, min: -0.05, scope: discovered}
  - {name: flips, metric: negative_flip_rate, compare: value, max: 0.05, scope: overall}
"""

# Runs a command and prints its own children's peak RSS (KiB on Linux) as the last stderr line.
LAUNCHER = ("import resource, subprocess, sys\n"
            "rc = subprocess.run(sys.argv[1:]).returncode\n"
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "file=sys.stderr)\n"
            "sys.exit(rc)\n")

FLOOR = """\
import sys, time
import pyarrow as pa, pyarrow.compute as pc
fmt, data, teacher, student = sys.argv[1:5]
start = time.perf_counter()
if fmt == "parquet":
    import pyarrow.parquet as pq
    read = pq.read_table
else:
    import pyarrow.json as pj
    read = pj.read_json
d = read(data).select(["id", "label", "lang", "channel", "tier"])
t = read(teacher).select(["id", "label"]).rename_columns(["id", "teacher"])
s = read(student).select(["id", "label"]).rename_columns(["id", "student"])
j = d.join(t, "id").join(s, "id")
j = j.append_column("t_ok", pc.equal(j["teacher"], j["label"]).cast(pa.int8()))
j = j.append_column("s_ok", pc.equal(j["student"], j["label"]).cast(pa.int8()))
out = [pc.mean(j["t_ok"]).as_py(), pc.mean(j["s_ok"]).as_py()]
for by in ("lang", "channel", "tier"):
    out.append(j.group_by(by).aggregate([("t_ok", "mean"), ("s_ok", "mean")]).num_rows)
print("FLOOR", time.perf_counter() - start, j.num_rows, out)
"""


def build(folder: Path, rows: int, fmt: str, gap: float, seed: int = 0) -> Path:
    """Write data, teacher and student files, the suite and its rubric; return the suite path."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {k: np.array(v)[rng.integers(0, len(v), rows)]
                                   for k, v in FEATURES.items()}
    n_words = rng.integers(3, 60, rows)
    gold = rng.integers(0, len(LABELS), rows)
    teacher_ok = rng.random(rows) < TEACHER_ACC
    pocket = np.ones(rows, dtype=bool)
    for k, v in POCKET.items():
        pocket &= cols[k] == v
    u = rng.random(rows)
    lose = np.where(pocket, FLIP + gap, FLIP)
    win = FLIP * TEACHER_ACC / (1 - TEACHER_ACC)
    student_ok = np.where(teacher_ok, u >= lose, u < win)
    wrong = (gold + rng.integers(1, len(LABELS), rows)) % len(LABELS)
    labels = np.array(LABELS)
    teacher = labels[np.where(teacher_ok, gold, wrong)]
    student = labels[np.where(student_ok, gold, wrong)]
    ids = np.char.add("ex-", np.arange(rows).astype(str))
    texts = np.char.add("ticket text ", np.arange(rows).astype(str))
    table = {"id": ids, "text": texts, "label": labels[gold], **cols, "n_words": n_words}
    ext = "parquet" if fmt == "parquet" else "jsonl"
    _write(folder / f"data.{ext}", table, fmt)
    _write(folder / f"teacher.{ext}", {"id": ids, "label": teacher}, fmt)
    _write(folder / f"student.{ext}", {"id": ids, "label": student}, fmt)
    (folder / "rubric.yaml").write_text(RUBRIC, "utf-8")
    suite = folder / "suite.yaml"
    suite.write_text(SUITE.format(data=f"data.{ext}", teacher=f"teacher.{ext}",
                                  student=f"student.{ext}", labels=", ".join(LABELS)), "utf-8")
    return suite


def _write(path: Path, columns: dict[str, np.ndarray], fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({k: pa.array(v.tolist()) for k, v in columns.items()}), path)
        return
    names = list(columns)
    lists = [columns[k].tolist() for k in names]
    enc = json.JSONEncoder(ensure_ascii=False).encode
    with path.open("w", encoding="utf-8") as fh:
        for row in zip(*lists, strict=True):
            fh.write("{" + ", ".join(f'"{k}": {enc(v)}' for k, v in zip(names, row, strict=True))
                     + "}\n")


def measured(cmd: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, peak MB, the finished process) of ``cmd`` run under the launcher."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], cwd=cwd, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    peak_kb = 0.0
    lines = proc.stderr.rstrip().splitlines()
    if lines and lines[-1].startswith("PEAK_KB"):
        peak_kb = float(lines[-1].split()[1])
        proc.stderr = "\n".join(lines[:-1])
    return wall, peak_kb / 1024, proc


def pocket_found(report: Path) -> tuple[bool, list[str]]:
    """Whether a confirmed pocket is exactly the planted one; the confirmed pockets' names."""
    doc = json.loads(report.read_text("utf-8"))
    names: list[str] = []
    found = False
    for suite in doc["suites"]:
        for p in suite.get("pockets", []):
            if not p.get("confirmed"):
                continue
            names.append(p["slice"])
            preds = {(q["feature"], q["op"], q["value"]) for q in p["predicates"]}
            if preds == {(k, "eq", v) for k, v in POCKET.items()}:
                found = True
    return found, names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    ap.add_argument("--pocket-gap", type=float, default=0.12,
                    help="accuracy the student loses in the planted pocket")
    ap.add_argument("--keep", type=Path, default=None,
                    help="build (or reuse) the suite in this folder and keep it")
    ap.add_argument("--profile", action="store_true", help="cProfile the cold distill run")
    ap.add_argument("--harness", type=Path, default=None,
                    help="run the harness of this source tree (before/after figures)")
    ap.add_argument("--skip", default="", help="comma-separated steps not to run: "
                    "floor,warm,collect")
    ap.add_argument("--quick", action="store_true",
                    help=f"CI smoke run: {QUICK_ROWS:,} rows; targets printed, not judged")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows = QUICK_ROWS
    python = sys.executable
    skip = set(filter(None, args.skip.split(",")))
    if args.harness is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(args.harness.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])])
        print(f"harness from {args.harness}")
    if args.keep is not None:
        workdir = args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix=".distill-bench-", dir=ROOT))
    try:
        suite = workdir / "suite.yaml"
        start = time.perf_counter()
        ext = "parquet" if args.format == "parquet" else "jsonl"
        if not (suite.exists() and (workdir / f"data.{ext}").exists()
                and sum(1 for _ in _rows(workdir / f"data.{ext}")) == args.rows):
            suite = build(workdir, args.rows, args.format, args.pocket_gap)
            print(f"built {args.rows:,} examples ({args.format}) in "
                  f"{time.perf_counter() - start:.1f}s under {workdir.name}/")
        sizes = {p.name: p.stat().st_size / 1e6 for p in sorted(workdir.glob(f"*.{ext}"))}
        print("files: " + ", ".join(f"{k} {v:.0f} MB" for k, v in sizes.items()))
        print(f"load average before: {os.getloadavg()}")

        floor_s, floor_mb, proc = measured(
            [python, "-c", FLOOR, args.format, *(str(workdir / f"{n}.{ext}")
                                                 for n in ("data", "teacher", "student"))], workdir)
        if proc.returncode != 0:
            raise SystemExit(f"floor failed:\n{proc.stderr[-3000:]}")
        inner = float(next(ln for ln in proc.stdout.splitlines() if ln.startswith("FLOOR")).split()[1])
        print(f"floor (pyarrow read + join + per-slice means): {floor_s:.2f}s wall in its process "
              f"({inner:.2f}s without the interpreter and imports), peak {floor_mb:.0f} MB")

        cache = workdir / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        report = workdir / "report.json"
        run_cmd = [python, "-m", "harness.cli", "run", str(suite), "--cache", str(cache),
                   "--report", str(report), "--quiet"]
        cold_cmd = ([python, "-m", "cProfile", "-s", "cumulative", *run_cmd[1:]] if args.profile
                    else run_cmd)
        run_s, run_mb, proc = measured(cold_cmd, workdir)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"distill run exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        if args.profile:
            print("\n".join(proc.stdout.splitlines()[:70]))
        verdict = next((ln for ln in proc.stdout.splitlines() if "verdict" in ln.lower()), "")
        print(f"distill run (cold cache): {run_s:.2f}s wall, peak {run_mb:.0f} MB, {verdict!r}")
        warm_s = float("nan")
        if "warm" not in skip:
            warm_s, warm_mb, proc = measured(run_cmd, workdir)
            print(f"distill run (warm cache): {warm_s:.2f}s wall, peak {warm_mb:.0f} MB")
        found, names = pocket_found(report)

        collect_s, collect_mb, verdict_printed = float("nan"), float("nan"), False
        if "collect" not in skip:
            (workdir / "pytest.ini").write_text("[pytest]\n", "utf-8")
            collect_s, collect_mb, proc = measured(
                [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                 "--distill-suite", str(suite), "--distill-cache", str(cache), "--rootdir",
                 str(workdir), "-c", str(workdir / "pytest.ini")], workdir)
            collected = proc.stdout.strip().splitlines()
            verdict_printed = any("distill verdict:" in ln for ln in collected)
            if proc.returncode != 0:
                print(f"collect-only exited {proc.returncode}:\n{proc.stdout[-2000:]}"
                      f"{proc.stderr[-2000:]}")
            n_items = sum(1 for ln in collected if "::" in ln)
            print(f"pytest --collect-only: {collect_s:.2f}s wall, peak {collect_mb:.0f} MB, "
                  f"{n_items} items, verdict printed: {'YES' if verdict_printed else 'no'}")

        load = os.getloadavg()
        ratio = run_s / floor_s
        print(f"\ntargets ({args.rows:,} rows, {args.format}; load average {load[0]:.2f} "
              f"{load[1]:.2f} {load[2]:.2f}):")
        checks = [
            ("distill run / floor", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO),
            ("distill run peak memory", f"{run_mb:.0f} MB", f"<= {TARGET_PEAK_MB:.0f} MB",
             run_mb <= TARGET_PEAK_MB),
            ("--collect-only", f"{collect_s:.2f}s", f"<= {TARGET_COLLECT_S}s",
             collect_s <= TARGET_COLLECT_S),
            ("--collect-only prints no verdict", "printed" if verdict_printed else "none",
             "none", not verdict_printed),
            ("planted pocket lang=de & channel=email", "found" if found else "NOT found",
             "found", found),
        ]
        for label, value, target, ok in checks:
            print(f"  {label:<40} {value:>10}  target {target:<10} {'met' if ok else 'MISSED'}")
        print(f"  (warm distill run / floor: {warm_s / floor_s:.2f}x; confirmed pockets: "
              f"{', '.join(names[:6]) or 'none'}{' …' if len(names) > 6 else ''})")
        if args.quick:
            print(f"quick mode ({args.rows:,} rows): the targets above are printed, not judged")
            return 0
        return 0 if all(ok for *_, ok in checks) else 1
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _rows(path: Path):  # type: ignore[no-untyped-def]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from range(pq.ParquetFile(path).metadata.num_rows)
        return
    with path.open("rb") as fh:
        yield from fh


if __name__ == "__main__":
    raise SystemExit(main())
