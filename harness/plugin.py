"""pytest glue: ``pytest --distill-suite``.

Every hook is a few lines handing off to :class:`harness.session.DistillSession`. Without
``--distill-suite`` the plugin collects nothing and imports nothing heavy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.items import SESSION_KEY
from harness.options import Options

DEVICES = ("auto", "cpu", "cuda", "mps")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("distill", "distill-harness: gate a distilled student model")
    group.addoption("--distill-suite", action="append", nargs="?", const="", default=None,
                    metavar="PATH", help="suite file or folder of suites to gate (repeatable); "
                    "without a value, the ini option distill_suites (default suites/)")
    group.addoption("--distill-update-baselines", action="store_true", default=False,
                    help="write (or refresh) the stored baselines of the suites run")
    group.addoption("--distill-report", metavar="PATH", default=None, help="write the JSON report")
    group.addoption("--distill-markdown", metavar="PATH", default=None,
                    help="write the Markdown report (also to $GITHUB_STEP_SUMMARY when set)")
    group.addoption("--distill-html", metavar="PATH", default=None,
                    help="write the self-contained HTML report (examples side by side)")
    group.addoption("--distill-report-examples", metavar="N", default="50",
                    help="examples kept per failing check and per pocket in the reports "
                    "(default 50)")
    group.addoption("--distill-cache", metavar="DIR", default=".distill-cache",
                    help="prediction cache folder (default .distill-cache)")
    group.addoption("--distill-no-cache", action="store_true", default=False,
                    help="do not read or write the prediction cache")
    group.addoption("--distill-strict", action="store_true", default=False,
                    help="inconclusive checks fail the build")
    group.addoption("--distill-allow-remote-code", action="store_true", default=False,
                    help="allow trust_remote_code: true in model specs")
    group.addoption("--distill-device", metavar="DEVICE", default=None,
                    help="run transformers models on DEVICE (auto, cpu, cuda, cuda:N, mps)")
    group.addoption("--distill-annotations", action="store_true", default=False,
                    help="print GitHub workflow-command annotations (on by default under "
                    "GITHUB_ACTIONS=true)")
    group.addoption("--distill-seed", type=int, default=0, metavar="N",
                    help="seed of resampling and pocket discovery (default 0)")
    group.addoption("--distill-dry-run", action="store_true", default=False,
                    help="print per model how many requests a run would make (cached ones "
                    "excluded) and their estimated cost, then exit 0; no model runs")
    parser.addini("distill_suites", "suite files or folders gated by a bare --distill-suite",
                  type="args", default=["suites/"])


def _options(config: pytest.Config) -> Options:
    device = config.getoption("distill_device")
    if device is not None and not (device in DEVICES or (device.startswith("cuda:")
                                                         and device[5:].isdigit())):
        raise pytest.UsageError(f"--distill-device: {device!r} is not one of auto, cpu, cuda, "
                                "cuda:N, mps")

    examples = str(config.getoption("distill_report_examples"))
    if not examples.isdigit():
        raise pytest.UsageError(f"--distill-report-examples: {examples!r} is not a whole number "
                                ">= 0")

    def path(opt: str) -> Path | None:
        value = config.getoption(opt)
        return Path(value) if value else None

    return Options(
        cache_dir=None if config.getoption("distill_no_cache") else path("distill_cache"),
        strict=config.getoption("distill_strict"),
        allow_remote_code=config.getoption("distill_allow_remote_code"),
        device=device,
        update_baselines=config.getoption("distill_update_baselines"),
        report_path=path("distill_report"),
        markdown_path=path("distill_markdown"),
        html_path=path("distill_html"),
        report_examples=int(examples),
        annotations=config.getoption("distill_annotations"),
        progress=config.getoption("verbose") > -2,  # quiet with -q -q
        progress_stream=_TerminalProgress(config),
        seed=config.getoption("distill_seed"),
        dry_run=config.getoption("distill_dry_run"),
    )


class _TerminalProgress:
    """Progress lines through pytest's terminal writer, with output capture suspended (as live
    logging does): a model run inside a test item still reaches the terminal or the CI log."""

    def __init__(self, config: pytest.Config):
        self.config = config

    def _reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def write(self, text: str) -> None:
        reporter = self._reporter()
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if capman is None:
            self._show(reporter, text)
            return
        with capman.global_and_fixture_disabled():
            self._show(reporter, text)

    @staticmethod
    def _show(reporter: Any, text: str) -> None:
        reporter.ensure_newline()  # not after the item's "suites/x.yaml " on the same line
        reporter.write(text, flush=True)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        reporter = self._reporter()
        return bool(reporter is not None and reporter.isatty)


def _targets(config: pytest.Config, raw: list[str]) -> list[Path]:
    base = Path(config.invocation_params.dir)
    values = [v for v in raw if v] or list(config.getini("distill_suites"))
    targets = [(base / v).resolve() for v in values]
    missing = [v for v, t in zip(values, targets, strict=True) if not t.exists()]
    if missing:
        raise pytest.UsageError(f"--distill-suite: {missing[0]!r} does not exist")
    return targets


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--distill-dry-run``: print the plan of the suites and end the run (like ``--markers``)."""
    if not config.getoption("distill_dry_run"):
        return None
    raw = config.getoption("distill_suite")
    if raw is None:
        raise pytest.UsageError("--distill-dry-run needs --distill-suite")
    from harness.dryrun import plan_lines
    from harness.errors import HarnessError
    from harness.session import DistillSession

    session = DistillSession(_options(config), _targets(config, raw))
    try:
        lines = plan_lines(session.suite_paths(), session.options)
    except HarnessError as exc:
        raise pytest.UsageError(f"--distill-dry-run: {exc}") from None
    for line in lines:
        print(line)
    return 0


def pytest_configure(config: pytest.Config) -> None:
    raw = config.getoption("distill_suite")
    if raw is None:
        return
    from harness.session import DistillSession

    targets = _targets(config, raw)
    session = DistillSession(_options(config), targets)
    config.stash[SESSION_KEY] = session
    # Gate the suites: as the only arguments when none were given, else next to them.
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    args = [str(t) for t in targets]
    if explicit:
        config.args.extend(a for a in args if a not in config.args)
    else:
        config.args[:] = args


def _session(config: pytest.Config) -> Any:
    return config.stash.get(SESSION_KEY, None)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    session = _session(parent.config)
    if session is None:
        return None
    from harness.errors import HarnessError

    try:
        wanted = session.suite_paths()
    except HarnessError:
        return None
    if file_path.resolve() in wanted:
        from harness.items import SuiteFile

        return SuiteFile.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = _session(config)
    if session is None or hasattr(config, "workerinput"):
        return
    from harness.report.terminal import report_lines

    terminalreporter.section("distill-harness")
    if not session.ran():
        terminalreporter.write_line("distill: no check ran, so there is no verdict")
        return
    doc = session.report()
    for line in report_lines(doc):
        terminalreporter.write_line(line)
    for line in session.write_reports(doc):
        terminalreporter.write_line(line)
    for name, paths in (doc.get("baselines") or {}).items():
        for p in paths:
            terminalreporter.write_line(f"distill: baseline {name}: {p}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ds = _session(session.config)
    if ds is None:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # xdist worker: hand the suite results to the controller, which writes the report.
        workeroutput["distill_suites"] = ds.report()["suites"]
        return
    if session.config.pluginmanager.get_plugin("terminalreporter") is None and ds.ran():
        ds.write_reports(ds.report())


# pytest-xdist's hook: optional, so that pytest accepts the plugin where xdist is not installed.
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the suite results computed by a worker."""
    ds = _session(node.config)
    if ds is not None:
        ds.extra_results.extend(getattr(node, "workeroutput", {}).get("distill_suites", []))


@pytest.fixture(scope="session")
def distill_result(request: pytest.FixtureRequest) -> Callable[[str | os.PathLike[str]], Any]:
    """Run a suite (once per session) and return its :class:`harness.results.SuiteResult`.

    Use it in your own tests::

        def test_student_keeps_plot_accuracy(distill_result):
            result = distill_result("suites/sentiment.yaml")
            plot = next(r for r in result.slices if r["slice"] == "source=plot")
            assert plot["student"] >= 0.8

    A relative path resolves against pytest's rootdir (where ``pyproject.toml`` or
    ``pytest.ini`` is), so the call reads the same from any folder pytest is started in. A suite
    that cannot be found, loaded or run fails the calling test with one line naming the file
    and what was wrong.
    """
    from harness.errors import HarnessError
    from harness.session import DistillSession

    ds = _session(request.config) or DistillSession(_options(request.config), [])

    def run(suite_path: str | os.PathLike[str]) -> Any:
        from harness.runner import prepare_suite, run_prepared

        path = _suite_path(request.config, suite_path)
        outcome = ds.outcomes.get(path)
        if outcome is not None and outcome.result is not None:
            return outcome.result
        try:
            return run_prepared(prepare_suite(path, ds.options), ds.options)
        except HarnessError as exc:
            pytest.fail(f"distill_result({str(suite_path)!r}): {exc}", pytrace=False)

    return run


def _suite_path(config: pytest.Config, suite_path: str | os.PathLike[str]) -> Path:
    """``suite_path`` resolved against the rootdir (or, failing that, the invocation folder)."""
    given = Path(suite_path)
    if given.is_absolute():
        candidates = [given]
    else:
        candidates = [Path(config.rootpath) / given, Path(config.invocation_params.dir) / given]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    pytest.fail(f"distill_result({str(suite_path)!r}): no such suite file (looked for {tried})",
                pytrace=False)
