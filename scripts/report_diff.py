"""Run suites with ``distill run --report`` and diff the JSON reports against a reference run.

The evidence that a refactoring left behaviour unchanged: the same suites, run by two versions
of the harness, give the same JSON report apart from the fields that come from measured time.

Three commands::

    # write the scenario repositories once (from the integration tests' own builders)
    python scripts/report_diff.py build /tmp/scenarios
    # run every scenario with a given harness (a worktree of another commit via --pythonpath)
    python scripts/report_diff.py run /tmp/scenarios /tmp/before-reports --pythonpath /tmp/before
    python scripts/report_diff.py run /tmp/scenarios /tmp/after-reports
    # compare: exit 0 when identical apart from the timing fields, 1 otherwise
    python scripts/report_diff.py diff /tmp/before-reports /tmp/after-reports

``run`` copies each scenario into a fresh temporary folder, runs its steps in order (each step
may first copy files over others, e.g. a degraded student) and keeps every step's report and
exit status. ``--suite NAME=PATH`` adds a suite of this repository (``suites/tickets.yaml``,
``suites/sentiment``...): it runs in place, with the default cache, and no baseline is written.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "tests" / "integration"

#: Keys whose values come from measured time, wherever they occur in a report: latency
#: measurements and everything derived from them (ratios, throughput, their CIs, how many
#: repeats the stopping rule took, whether it converged, a reused measurement).
TIMING_KEYS = frozenset({
    "latency", "per_batch", "latency_improvement", "latency_ci", "latency_ci_half_width",
    "latency_repeats", "latency_converged", "throughput_improvement", "teacher_throughput",
    "student_throughput", "ratio_p50", "ratio_ci", "ci_half_width", "teacher_p50",
    "teacher_p90", "teacher_p99", "student_p50", "student_p90", "student_p99", "p50_s",
    "p90_s", "p99_s", "request_latency", "reused", "repeats", "converged", "wall_s",
    "elapsed_s", "seconds",
})

#: Gateable metrics derived from measured time: a check on one keeps only its verdict, its
#: identity and its threshold; its value, interval, test and message are timing-derived.
TIMING_METRICS = frozenset({"latency_improvement", "throughput_improvement"})
TIMING_CHECK_FIELDS = frozenset({
    "value", "ci", "p_value", "q_value", "message", "test", "student", "teacher", "reference",
    "needed", "decision",
})

ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
       "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


# --------------------------------------------------------------------------- build

def _module(name: str) -> ModuleType:
    path = INTEGRATION / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_report_diff_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(INTEGRATION))  # their ``from conftest import ...``
    spec.loader.exec_module(module)
    return module


class _NoEnv:
    """Stands in for pytest's ``monkeypatch`` in a fixture body: the runs set their own env."""

    def setenv(self, *_: object) -> None:
        pass

    def delenv(self, *_: object, **__: object) -> None:
        pass


def _fixture(module: ModuleType, name: str, root: Path) -> None:
    body = getattr(module, name).__wrapped__
    body(SimpleNamespace(path=root), _NoEnv())


def build(dest: Path) -> None:
    """Write every scenario repository and ``manifest.json`` (the steps of each) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}

    def fresh(name: str) -> Path:
        path = dest / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        return path

    # Classification on the tiny repository (slices, owners' absence, point decisions).
    conftest = _module("conftest")
    tiny = conftest.copy_tiny_repo(fresh("tiny"))
    manifest["tiny"] = {"suite": "suites/tiny.yaml", "steps": [{"args": []}]}

    # Classification with a baseline: missing -> update -> rerun -> degraded -> update -> rerun.
    life = _module("test_baseline_lifecycle")
    root = fresh("baseline")
    life.repo.__wrapped__(SimpleNamespace(path=root))
    degraded = life.STUDENT_WRONG | set(life.FLIPPED)
    (root / "preds" / "student_degraded.jsonl").write_text(life._predictions(degraded), "utf-8")
    manifest["baseline"] = {"suite": "suites/s.yaml", "steps": [
        {"args": []}, {"args": ["--update-baselines"]}, {"args": []},
        {"copy": {"preds/student.jsonl": "preds/student_degraded.jsonl"}, "args": []},
        {"args": ["--strict"]}, {"args": ["--update-baselines"]}, {"args": []}]}

    # The tiny repository with a baseline_delta check beside the slice checks, owners on a
    # by: slice and distillation data (coverage gaps).
    root = conftest.copy_tiny_repo(fresh("tiny_baseline"))
    rubric = root / "rubrics" / "tiny.yaml"
    rubric.write_text(rubric.read_text("utf-8") + (
        "  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, "
        "scope: slices}\n"), "utf-8")
    suite = root / "suites" / "tiny.yaml"
    text = suite.read_text("utf-8").replace(
        "  - by: lang\n", "  - by: lang\n    owner: '@org/i18n'\n    playbook: docs/lang.md\n")
    text += "distillation_data:\n  path: ../data/distill.jsonl\n  id: id\n  input: text\n"
    text += "  features: [lang, has_negation, n_words, channel]\n"
    suite.write_text(text, "utf-8")
    rows = [json.loads(x) for x in (root / "data" / "eval.jsonl").read_text("utf-8").splitlines()]
    distill = [{**r, "id": f"d{k}"} for k, r in enumerate(rows) if r["lang"] != "de"]
    (root / "data" / "distill.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in distill), "utf-8")
    shutil.copyfile(root / "data" / "teacher.jsonl", root / "data" / "student_meeting.jsonl")
    manifest["tiny_baseline"] = {"suite": "suites/tiny.yaml", "steps": [
        {"args": []}, {"args": ["--update-baselines"]}, {"args": []},
        {"copy": {"data/student.jsonl": "data/student_meeting.jsonl"}, "args": []},
        {"args": ["--strict"]}]}

    # Generation: references, pockets, chrF, and models priced by the token.
    gen = _module("test_generation_gate")
    gen._write(fresh("generation"))
    manifest["generation"] = {"suite": "suites/qa.yaml", "steps": [{"args": []}]}
    root = fresh("generation_tokens")
    gen._write(root)
    qa = root / "suites" / "qa.yaml"
    qa.write_text(qa.read_text("utf-8").replace(
        "teacher: {type: predictions, path: ../data/teacher.jsonl}",
        "teacher: {type: predictions, path: ../data/teacher.jsonl, metadata: "
        "{usd_per_million_tokens: {input: 10, output: 30}}}").replace(
        "student: {type: predictions, path: ../data/student.jsonl}",
        "student: {type: predictions, path: ../data/student.jsonl, metadata: "
        "{usd_per_million_tokens: {input: 1, output: 2}, training: {usd: 163}}}"), "utf-8")
    (root / "rubrics" / "qa.yaml").write_text(gen.RUBRIC + (
        "  - {name: cheaper, metric: cost_reduction, compare: value, min: 0.95}\n"), "utf-8")
    manifest["generation_tokens"] = {"suite": "suites/qa.yaml", "steps": [{"args": []}]}

    # Economics: size, speed (callables, timed), an untimeable model, candidates + frontier.
    econ = _module("test_economics_gate")
    econ._repo(fresh("econ_size"),
               teacher={"type": "predictions", "path": "preds.jsonl", "metadata": {"params": 1000}},
               student={"type": "predictions", "path": "preds.jsonl", "metadata": {"params": 900}},
               criteria="  - {name: size, metric: size_reduction, compare: value, min: 0.3}\n")
    manifest["econ_size"] = {"suite": "s.yaml", "steps": [{"args": []}]}
    econ._repo(fresh("econ_speed"),
               teacher={"type": "callable", "target": "econ_models:fast"},
               student={"type": "callable", "target": "econ_models:slow"},
               criteria="  - {name: speed, metric: latency_improvement, compare: value, min: 1.5}\n"
                        "  - {name: speed_warn, metric: latency_improvement, compare: value, "
                        "min: 1.5, severity: warn}\n",
               economics="economics: {batch_sizes: [4], sample: 8, warmup: 1, repeats: 3}\n")
    manifest["econ_speed"] = {"suite": "s.yaml", "pythonpath_root": True,
                              "steps": [{"args": []}, {"args": []}]}
    econ._repo(fresh("econ_untimed"),
               teacher={"type": "predictions", "path": "preds.jsonl"},
               student={"type": "predictions", "path": "preds.jsonl"},
               criteria="  - {name: speed, metric: latency_improvement, compare: value, min: 1.5}\n")
    manifest["econ_untimed"] = {"suite": "s.yaml", "steps": [{"args": []}]}
    root = fresh("econ_candidates")
    try:
        econ.test_candidate_students_frontier_and_recommendation(root)  # writes the repo, runs it
    except AssertionError as exc:  # the files are what we want; the test's own verdict is not
        print(f"note: econ_candidates' test assertion failed here: {exc}", file=sys.stderr)
    manifest["econ_candidates"] = {"suite": "s.yaml", "steps": [{"args": []}]}

    # Traffic: drift, the traffic pocket check, agreement as a value.
    traffic = _module("test_traffic_gate")
    _fixture(traffic, "shop", fresh("traffic"))
    manifest["traffic"] = {"suite": "suites/shop.yaml", "steps": [{"args": []}]}

    # The committed example on prediction files, copied so both versions read the same bytes.
    root = fresh("tickets")
    (root / "pyproject.toml").write_text("", "utf-8")
    for rel in ("suites/tickets.yaml", "rubrics/tickets.yaml", "examples/tickets"):
        src, dst = ROOT / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
    manifest["tickets"] = {"suite": "suites/tickets.yaml", "steps": [
        {"args": []}, {"args": ["--strict"]}, {"args": ["--update-baselines"]}, {"args": []}]}

    del tiny
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"{len(manifest)} scenarios written to {dest}")


# --------------------------------------------------------------------------- run

def _distill(python: str, pythonpath: list[str], cwd: Path, args: list[str]) -> tuple[int, str]:
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(pythonpath)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("GITHUB_ACTIONS", None)
    # -P: the working folder is not put first on sys.path (the harness comes from pythonpath)
    proc = subprocess.run([python, "-P", "-m", "harness.cli", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=3600)
    return proc.returncode, proc.stdout + proc.stderr


def run(scenarios: Path, out: Path, python: str, pythonpath: str | None, only: list[str],
        suites: list[str]) -> None:
    """Run every scenario's steps (and every ``--suite``); keep reports, exit codes, output."""
    manifest = json.loads((scenarios / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    base = [pythonpath] if pythonpath else []
    status: dict[str, Any] = {}
    for name, scenario in sorted(manifest.items()):
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"report-diff-{name}-") as tmp:
            work = Path(tmp) / name
            shutil.copytree(scenarios / name, work)
            path = base + ([str(work)] if scenario.get("pythonpath_root") else [])
            for k, step in enumerate(scenario["steps"]):
                for dst, src in step.get("copy", {}).items():
                    shutil.copyfile(work / src, work / dst)
                report = out / f"{name}.{k}.json"
                rc, text = _distill(python, path, work,
                                    [scenario["suite"], "--report", str(report), *step["args"]])
                (out / f"{name}.{k}.log").write_text(text)
                status[f"{name}.{k}"] = {"rc": rc, "args": step["args"]}
                print(f"{name}.{k} {' '.join(step['args'])}: exit {rc}", flush=True)
    for entry in suites:
        name, _, rel = entry.partition("=")
        report = out / f"{name}.json"
        rc, text = _distill(python, base, ROOT, [rel, "--report", str(report)])
        (out / f"{name}.log").write_text(text)
        status[name] = {"rc": rc, "args": [rel]}
        print(f"{name} ({rel}): exit {rc}", flush=True)
    old = json.loads((out / "status.json").read_text()) if (out / "status.json").exists() else {}
    (out / "status.json").write_text(json.dumps({**old, **status}, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- diff

def strip_timing(doc: Any, ignore: frozenset[str] = frozenset()) -> Any:
    """``doc`` without the fields that come from measured time (see :data:`TIMING_KEYS`) and
    without the keys in ``ignore`` (fields a change is known to alter, named on the command
    line so the rest can be shown identical)."""
    if isinstance(doc, dict):
        drop = set(TIMING_KEYS) | ignore
        if doc.get("metric") in TIMING_METRICS and "verdict" in doc:
            drop |= TIMING_CHECK_FIELDS
        return {k: strip_timing(v, ignore) for k, v in doc.items() if k not in drop}
    if isinstance(doc, list):
        return [strip_timing(v, ignore) for v in doc]
    return doc


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Every path where ``before`` and ``after`` differ, with both values (short)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}"
            if key not in before:
                out.append(f"{sub}: only after: {_short(after[key])}")
            elif key not in after:
                out.append(f"{sub}: only before: {_short(before[key])}")
            else:
                out.extend(differences(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for k, (b, a) in enumerate(zip(before, after, strict=True))
                for d in differences(b, a, f"{path}[{k}]")]
    return [] if before == after else [f"{path}: {_short(before)} -> {_short(after)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def diff(before: Path, after: Path, ignore: frozenset[str] = frozenset()) -> int:
    """Print what differs between the two runs' reports and exit codes; 0 when nothing does."""
    failures = 0
    b_status = json.loads((before / "status.json").read_text())
    a_status = json.loads((after / "status.json").read_text())
    for key in sorted(set(b_status) | set(a_status)):
        if key not in a_status or key not in b_status:
            print(f"{key}: run only {'before' if key in b_status else 'after'}")
            continue
        lines = []
        if b_status[key]["rc"] != a_status[key]["rc"]:
            lines.append(f"exit status {b_status[key]['rc']} -> {a_status[key]['rc']}")
        b_path, a_path = before / f"{key}.json", after / f"{key}.json"
        if b_path.exists() != a_path.exists():
            lines.append(f"report written only {'before' if b_path.exists() else 'after'}")
        elif b_path.exists():
            lines += differences(strip_timing(json.loads(b_path.read_text()), ignore),
                                 strip_timing(json.loads(a_path.read_text()), ignore))
        print(f"{key}: {'identical apart from timing fields' if not lines else 'DIFFERS'}")
        for line in lines:
            print(f"    {line}")
        failures += bool(lines)
    also = f"; also ignored: {', '.join(sorted(ignore))}" if ignore else ""
    print(f"{failures} report(s) differ{also}" if failures else "every report identical apart "
          f"from timing fields ({', '.join(sorted(TIMING_KEYS))}){also}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="write the scenario repositories")
    p.add_argument("dest", type=Path)
    p = sub.add_parser("run", help="run every scenario, keep the reports")
    p.add_argument("scenarios", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--pythonpath", help="the harness to run (a worktree of another commit)")
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--suite", action="append", default=[], metavar="NAME=PATH",
                   help="also run a suite of this repository in place")
    p = sub.add_parser("diff", help="compare two runs' reports apart from timing fields")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--ignore", action="append", default=[], metavar="KEY",
                   help="also ignore this key wherever it occurs (a field another change alters)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.dest)
        return 0
    if args.command == "run":
        run(args.scenarios, args.out, args.python, args.pythonpath, args.only, args.suite)
        return 0
    return diff(args.before, args.after, frozenset(args.ignore))


if __name__ == "__main__":
    sys.exit(main())
