"""The ``distill`` command: ``run``, ``validate``, ``report``, ``baseline pin``, ``history``,
``compare``.

Exit codes: 0 pass, 1 gate failed, 2 bad input or usage (one line on stderr), 3 internal error.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_PASS, EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"distill: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def _count(text: str) -> int:
    """A whole number >= 0 (``--report-examples``)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    from harness import __version__

    p = _Parser(prog="distill", description="Gate a distilled student model against its teacher.")
    p.add_argument("--version", action="version", version=f"distill-harness {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run suites and gate them")
    run.add_argument("suites", nargs="+", metavar="SUITE", help="suite file or folder of suites")
    run.add_argument("--report", type=Path, help="write the JSON report here")
    run.add_argument("--markdown", type=Path, help="write the Markdown report here")
    run.add_argument("--html", type=Path, help="write the self-contained HTML report here")
    run.add_argument("--report-examples", type=_count, default=50, metavar="N",
                     help="examples kept per failing check and per pocket (default 50)")
    run.add_argument("--update-baselines", action="store_true", help="write the stored baselines")
    run.add_argument("--cache", type=Path, default=Path(".distill-cache"), help="prediction cache")
    run.add_argument("--no-cache", action="store_true", help="do not use the prediction cache")
    run.add_argument("--strict", action="store_true", help="inconclusive checks fail")
    run.add_argument("--allow-remote-code", action="store_true")
    run.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--annotations", action="store_true", help="print GitHub annotations")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--quiet", action="store_true", help="print only the verdict")
    run.add_argument("--dry-run", action="store_true",
                     help="print per model how many requests a run would make (cached ones "
                     "excluded) and their estimated cost; run no model")
    val = sub.add_parser("validate", help="check suite, rubric, baseline, report or predictions files")
    val.add_argument("files", nargs="+", type=Path, metavar="FILE")
    val.add_argument("--suite", metavar="SUITE",
                     help="check predictions and rubrics in this suite's context (its ids, labels, "
                          "task and data); without it they are checked on their own")
    rep = sub.add_parser("report", help="render a stored JSON report")
    rep.add_argument("file", type=Path)
    rep.add_argument("--format", choices=("table", "markdown", "json", "html"), default="table")
    rep.add_argument("-o", "--output", type=Path, default=None,
                     help="write to this file instead of standard output")
    _history_parsers(sub)
    return p


def _history_parsers(sub: Any) -> None:
    """``baseline pin``, ``history`` and ``compare`` (baselines over time)."""
    base = sub.add_parser("baseline", help="manage stored baselines")
    base_sub = base.add_subparsers(dest="baseline_command", required=True, parser_class=_Parser)
    pin = base_sub.add_parser("pin", help="copy the current baseline to baselines/<suite>@NAME.json")
    pin.add_argument("suite", metavar="SUITE", help="suite file or suite name")
    pin.add_argument("--as", dest="name", required=True, metavar="NAME",
                     help="the pin's name, e.g. launch (rubric criteria say against: NAME)")
    hist = sub.add_parser("history", help="the accepted releases of a suite's baseline (git)")
    hist.add_argument("suite", metavar="SUITE", help="suite file or suite name")
    hist.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    hist.add_argument("--plot", type=Path, metavar="OUT.png", help="write the trend plot here")
    hist.add_argument("--reports", type=Path, nargs="+", default=[], metavar="FILE",
                      help="saved JSON reports to add (they carry latency)")
    cmp = sub.add_parser("compare", help="compare two runs of a suite, example by example")
    cmp.add_argument("a", metavar="A", help="baseline file, JSON report or REV:path")
    cmp.add_argument("b", metavar="B", help="baseline file, JSON report or REV:path")
    cmp.add_argument("--rubric", type=Path, help="rubric whose baseline_* margins judge B "
                                                  "(default: the suite's)")
    cmp.add_argument("--suite", help="the suite file whose data gives the gold labels "
                                     "(default: found by the runs' suite name)")
    cmp.add_argument("--cache", type=Path, default=Path(".distill-cache"),
                     help="prediction cache, for a report's per-example outcomes")
    cmp.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    cmp.add_argument("--strict", action="store_true", help="inconclusive checks fail")


class _PipeSafeStdout:
    """stdout that a closed pipe (``distill history S | head -1``) silences instead of breaking.

    The reader is gone, not the command: it goes on (a run still writes its reports and
    baselines) and exits with its own code, as Unix tools do; nothing more reaches stdout.
    """

    def __init__(self, stream: Any):
        self._stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed_pipe = True
        # The interpreter flushes stdout once more at exit: point its descriptor at the null
        # device so that last flush cannot fail ("Exception ignored ... BrokenPipeError").
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``distill`` console script; returns the exit code.

    A closed stdout (the reader of a pipe exited) never turns into an error: see
    :class:`_PipeSafeStdout`.
    """
    saved, safe = sys.stdout, _PipeSafeStdout(sys.stdout)
    sys.stdout = safe
    try:
        return _main(argv)
    finally:  # also after argparse's SystemExit (--help, --version)
        safe.flush()
        sys.stdout = saved


def _main(argv: Sequence[str] | None) -> int:
    from harness.errors import HarnessError

    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "baseline":
            return _baseline_pin(args)
        if args.command == "history":
            return _history(args)
        if args.command == "compare":
            return _compare(args)
        return _report(args)
    except HarnessError as exc:
        print(f"distill: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("distill: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # the last line of defence: exit 3, one line, no traceback dump
        print(f"distill: internal error: {type(exc).__name__}: {exc} "
              "(please report it with the suite that triggered it)", file=sys.stderr)
        return EXIT_INTERNAL


def _run(args: argparse.Namespace) -> int:
    from harness.options import Options
    from harness.report.terminal import report_lines
    from harness.session import DistillSession

    if args.device is not None and not (args.device in ("auto", "cpu", "cuda", "mps") or (
            args.device.startswith("cuda:") and args.device[5:].isdigit())):
        print(f"distill: --device: {args.device!r} is not one of auto, cpu, cuda, cuda:N, mps",
              file=sys.stderr)
        return EXIT_INPUT
    options = Options(
        cache_dir=None if args.no_cache else args.cache, strict=args.strict,
        allow_remote_code=args.allow_remote_code, device=args.device,
        update_baselines=args.update_baselines, report_path=args.report,
        markdown_path=args.markdown, html_path=args.html, report_examples=args.report_examples,
        annotations=args.annotations, progress=True, seed=args.seed,
        dry_run=args.dry_run, flag_prefix="--")
    session = DistillSession(options, [Path(s) for s in args.suites])
    paths = session.suite_paths()
    if not paths:
        print(f"distill: no suite files in {', '.join(args.suites)}", file=sys.stderr)
        return EXIT_INPUT
    if options.dry_run:
        from harness.dryrun import plan_lines

        for line in plan_lines(paths, options):
            print(line)
        return EXIT_PASS
    for path in paths:
        session.evaluate(path)
    doc = session.report()
    errors = session.errors()
    if errors:
        # Bad input: one line per broken suite on stderr and no verdict (nothing was gated).
        session.write_reports(doc)
        for err in errors:
            print(f"distill: {err['message']}", file=sys.stderr)
        return EXIT_INPUT
    missing_pins = [line for s in doc.get("suites") or []
                    for line in ((s.get("baseline") or {}).get("missing_pins") or {}).values()]
    if missing_pins:
        # A rubric that names a pin nobody wrote is bad input: its line, no verdict.
        session.write_reports(doc)
        for name, items in (doc.get("baselines") or {}).items():
            for item in items:
                print(f"distill: baseline {name}: {item}")
        for line in missing_pins:
            print(f"distill: {line}", file=sys.stderr)
        return EXIT_INPUT
    if args.quiet:
        print(f"distill verdict: {str(doc['verdict']).upper()}")
    else:
        for line in report_lines(doc):
            print(line)
    for line in session.write_reports(doc):
        print(line)
    for name, items in (doc.get("baselines") or {}).items():
        for item in items:
            print(f"distill: baseline {name}: {item}")
    return EXIT_PASS if doc["verdict"] == "pass" else EXIT_FAIL


def _validate(args: argparse.Namespace) -> int:
    from harness.paths import display_path

    if args.suite is not None:
        return _validate_in_suite(args.files, args.suite)
    for f in args.files:
        kind, notes = _validate_alone(f)
        print(f"{display_path(f)}: valid {kind}{_ALONE.get(kind, '')}")
        _print_notes(notes)
    return EXIT_PASS


def _validate_alone(path: Path) -> tuple[str, tuple[str, ...]]:
    """(kind, the rubric's load notes) of a file validated on its own: a rubric or a suite is
    loaded once and its rubric's notes kept, the rest checked by ``validate_file``."""
    from harness.spec import detect_kind, load_rubric, load_suite, read_document, validate_file

    if path.suffix.lower() not in (".jsonl", ".parquet"):
        kind = detect_kind(read_document(path)[0], path)
        if kind == "rubric":
            return kind, load_rubric(path).notes
        if kind == "suite":
            return kind, load_suite(path).rubric.notes
    return validate_file(path), ()


def _print_notes(notes: Sequence[str]) -> None:
    """A rubric's load notes (a confidence that is not the verdict's), as the run prints them."""
    for note in notes:
        print(f"note: {note}")


#: What a file checked on its own leaves unchecked (``distill validate`` without ``--suite``).
_ALONE = {
    "predictions": " (checked without a suite: its ids, labels and task were not; "
                   "pass --suite SUITE)",
    "rubric": " (checked without a suite: whether its metrics apply to the suite's task and "
              "data was not; pass --suite SUITE)",
    "baseline": " (checked without a suite: whether it is current was not; pass --suite SUITE)",
}


def _validate_in_suite(files: Sequence[Path], suite_arg: str) -> int:
    """Each file as the suite would read it: a predictions file against the suite's ids,
    labels and task (the data and traffic rows), a rubric against its task and data, a
    baseline against its data and rubric."""
    from harness import baseline
    from harness.history import resolve_suite
    from harness.paths import display_path
    from harness.spec import detect_kind as kind_of
    from harness.spec import load_rubric, load_suite, read_document, validate_file
    from harness.tasks import get_task

    spec = load_suite(resolve_suite(suite_arg))
    task = get_task(spec.task)
    data = task.load_data(spec.data, spec)
    model_data = data if spec.traffic_data is None else data.concat(
        task.load_data(spec.traffic_data, spec))
    context = f"in suite {spec.name} ({display_path(spec.path)})"
    for f in files:
        notes: tuple[str, ...] = ()
        if f.suffix.lower() in (".jsonl", ".parquet"):
            validate_file(f)  # the schema, line by line, first
            _predictions_model(f, spec).validate(model_data, spec.labels)
            kind = "predictions"
        else:
            doc, _ = read_document(f)
            kind = kind_of(doc, f)
            if kind == "rubric":
                notes = load_rubric(f, spec.root, task=spec.task,
                                    has_gold=spec.data.label is not None).notes
            elif kind == "baseline" and f.resolve() == spec.baseline_path.resolve():
                baseline.load_baseline(spec, data)
            else:
                validate_file(f, kind)
        print(f"{display_path(f)}: valid {kind} {context}")
        _print_notes(notes)
    return EXIT_PASS


def _predictions_model(path: Path, spec: Any) -> Any:
    """The adapter that reads ``path`` as the suite would read a ``type: predictions`` model."""
    from harness.models import load_model
    from harness.spec_types import ModelSpec

    model_spec = ModelSpec(type="predictions", source=path, field="predictions", path=str(path),
                           local_path=path.resolve(), task=spec.task)
    return load_model(model_spec, "predictions")


def _report(args: argparse.Namespace) -> int:
    from harness.report import load_report
    from harness.report.markdown import render_markdown
    from harness.report.terminal import report_lines

    doc = load_report(args.file)
    if args.format == "html":
        from harness.report.html import render_html, write_html

        if args.output is None:
            sys.stdout.write(render_html(doc))
        else:
            write_html(args.output, doc)
            print(f"distill: HTML report written to {args.output}")
        return EXIT_PASS
    if args.format == "markdown":
        text = render_markdown(doc)
    elif args.format == "json":
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    else:
        text = "\n".join(report_lines(doc)) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        from harness.fileio import atomic_write_text

        atomic_write_text(args.output, text)
    return EXIT_PASS if doc.get("verdict") == "pass" else EXIT_FAIL


def _baseline_pin(args: argparse.Namespace) -> int:
    from harness import baseline
    from harness.history import resolve_suite
    from harness.paths import display_path
    from harness.spec import load_suite
    from harness.tasks import get_task

    baseline.check_pin_name(args.name, field="--as")
    spec = load_suite(resolve_suite(args.suite))
    data = get_task(spec.task).load_data(spec.data, spec)
    path, state = baseline.pin_baseline(spec, data, args.name)
    print(f"distill: baseline {spec.name}: pin {args.name!r} {state}: {display_path(path)}")
    return EXIT_PASS


def _history(args: argparse.Namespace) -> int:
    from harness import history
    from harness.paths import display_path
    from harness.spec import load_suite

    spec = load_suite(history.resolve_suite(args.suite))
    hist = history.suite_history(spec, args.reports)
    sys.stdout.write(history.render(hist, args.format))
    if args.plot is not None:
        history.plot(hist, args.plot, spec.rubric)
        if args.format != "json":
            print(f"distill: trend plot written to {display_path(args.plot)}")
    return EXIT_PASS


def _compare(args: argparse.Namespace) -> int:
    from harness import compare, history
    from harness.spec import load_rubric, load_suite

    a = compare.read_run(args.a)
    b = compare.read_run(args.b, suite=a.suite)
    if a.kind == "report" and b.kind == "baseline":
        a = compare.read_run(args.a, suite=b.suite)
    compare.check_comparable(a, b)
    spec = load_suite(history.resolve_suite(args.suite or a.suite))
    rubric = load_rubric(args.rubric, spec.root) if args.rubric is not None else None
    result = compare.compare_runs(a, b, spec, rubric=rubric, cache_dir=args.cache,
                                  strict=args.strict)
    sys.stdout.write(compare.render(result, args.format))
    return EXIT_PASS if result.non_inferior else EXIT_FAIL


if __name__ == "__main__":
    raise SystemExit(main())
