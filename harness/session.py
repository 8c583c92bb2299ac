"""One harness session: the suites of a run, evaluated once each, and the report at the end.

Used by both the pytest plugin and the CLI; it knows nothing of pytest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.options import Options
from harness.paths import display_path, find_root
from harness.results import SuiteResult
from harness.spec import suite_files


@dataclass
class SuiteOutcome:
    """A suite's result, or the one-line error that stopped it."""

    path: Path
    result: SuiteResult | None = None
    error: str | None = None
    planned: list[Any] = field(default_factory=list)  # PlannedItem: what the items are named
    prepared: Any = None  # the PreparedSuite, between collection and the first item's run
    spec: Any = None  # the SuiteSpec, when the plan came from the cache (data not loaded yet)

    def check(self, check_id: str) -> Any:
        """The computed check with ``check_id`` (None when the run did not produce it)."""
        if self.result is None:
            return None
        return next((c for c in self.result.checks if c.id == check_id), None)


class DistillSession:
    """Evaluates each suite once however many checks (items) it has, and reports."""

    def __init__(self, options: Options, targets: list[Path]):
        self.options = options
        self.targets = targets
        self.outcomes: dict[Path, SuiteOutcome] = {}
        self.plans: dict[Path, SuiteOutcome] = {}
        self.extra_results: list[dict[str, Any]] = []  # suite dicts gathered from xdist workers
        self._paths: list[Path] | None = None

    def suite_paths(self) -> list[Path]:
        """Every suite file the targets name (a missing target is a HarnessError)."""
        if self._paths is None:
            out: list[Path] = []
            for t in self.targets:
                for p in suite_files(t):
                    if p not in out:
                        out.append(p)
            self._paths = out
        return list(self._paths)

    def prepare(self, path: Path) -> SuiteOutcome:
        """Load and plan the suite at ``path`` (once); no model runs. ``error`` if it cannot.

        The planned checks are kept in the cache under everything that decides them (suite,
        rubric, the data files' hashes, the harness version): collecting an unchanged suite
        again loads its suite and rubric files, hashes its data and reads no data row. Its
        data are then loaded (and checked) when its first item runs.
        """
        from harness.plan_cache import cached_items, keep_items, planned_items
        from harness.spec import load_suite

        path = path.resolve()
        if path in self.plans:
            return self.plans[path]
        outcome = SuiteOutcome(path=path)
        try:
            spec = load_suite(path)
            cached = cached_items(spec, self.options.cache_dir)
            if cached is not None:
                outcome.spec, outcome.planned = spec, cached
            else:
                from harness.runner import prepare_suite

                outcome.prepared = prepare_suite(path, self.options, spec=spec)
                outcome.planned = planned_items(outcome.prepared.plan)
                keep_items(spec, outcome.planned, self.options.cache_dir)
        except HarnessError as exc:
            outcome.error = str(exc)
        self.plans[path] = outcome
        return outcome

    def evaluate(self, path: Path) -> SuiteOutcome:
        """Prepare and run the suite at ``path`` (once; later calls return the same outcome)."""
        from harness.runner import prepare_suite, run_prepared

        path = path.resolve()
        if path in self.outcomes:
            return self.outcomes[path]
        planned = self.prepare(path)
        outcome = SuiteOutcome(path=path, planned=planned.planned, error=planned.error)
        if outcome.error is None:
            try:
                prepared = planned.prepared
                if prepared is None:  # planned from the cache: the data are loaded now
                    prepared = prepare_suite(path, self.options, spec=planned.spec)
                outcome.result = self._after_run(run_prepared(prepared, self.options))
            except HarnessError as exc:
                outcome.error = str(exc)
            planned.prepared = None  # the run is done; do not keep its data twice
        self.outcomes[path] = outcome
        return outcome

    def _after_run(self, result: SuiteResult) -> SuiteResult:
        """What a run produces outside itself: the baseline's trend, read from git, and the
        candidates' frontier plot, drawn next to the JSON report."""
        import dataclasses

        baseline = dict(result.baseline)
        if result.baseline_file is not None and result.baseline_file.is_file():
            from harness.history import trend_summary

            # The accepted releases (git history of the baseline) for the Markdown "Trend"
            # section; None without git history, which is no error for a run.
            trend = trend_summary(result.baseline_file)
            if trend is not None:
                baseline["trend"] = trend
        economics = dict(result.economics)
        candidates = result.candidates
        if candidates is not None and self.options.report_path is not None:
            from harness.memo import memo_root
            from harness.report.frontier_plot import frontier_plot, quality_threshold, teacher_latency

            with memo_root(self.options.cache_dir):  # the same plotted data: the same PNG
                png = frontier_plot(list(candidates.valid), list(candidates.frontier),
                                    candidates.recommended,
                                    self.options.report_path.parent / f"{result.name}-frontier.png",
                                    teacher_latency=teacher_latency(candidates.rows),
                                    threshold=quality_threshold([c.to_dict() for c in result.checks]))
            if png is not None:
                economics["frontier_plot"] = png.name
        return dataclasses.replace(result, baseline=baseline, economics=economics)

    def results(self) -> list[SuiteResult]:
        return [o.result for o in self.outcomes.values() if o.result is not None]

    def errors(self) -> list[dict[str, Any]]:
        """Every suite that could not be loaded (at collection) or run, once each."""
        failed = {**{p: o for p, o in self.plans.items() if o.error},
                  **{p: o for p, o in self.outcomes.items() if o.error}}
        return [{"suite": display_path(o.path), "message": o.error} for o in failed.values()]

    def ran(self) -> bool:
        """Whether the session has anything to judge: a suite that ran or could not be loaded.

        ``--collect-only``, or a ``-k`` that deselects every check, runs nothing: no verdict.
        """
        return bool(self.outcomes or self.extra_results or self.errors())

    def report(self) -> dict[str, Any]:
        from harness.report import build_report

        doc = build_report(self.results(), errors=self.errors(), strict=self.options.strict)
        if self.extra_results:
            have = {s["name"] for s in doc["suites"]}
            for s in self.extra_results:
                if s["name"] not in have:
                    doc["suites"].append(s)
                    have.add(s["name"])
            doc["suites"].sort(key=lambda s: s["name"])
            if any(s["verdict"] == "fail" for s in doc["suites"]):
                doc["verdict"] = "fail"
        baselines = self._baseline_notes(doc)
        if baselines:
            doc["baselines"] = baselines
        return doc

    def _baseline_notes(self, doc: dict[str, Any]) -> dict[str, Any]:
        written = [s["baseline"]["path"] for s in doc["suites"]
                   if (s.get("baseline") or {}).get("written") == "written"]
        unchanged = [s["baseline"]["path"] for s in doc["suites"]
                     if (s.get("baseline") or {}).get("written") == "unchanged"]
        notes: dict[str, Any] = {}
        if written or unchanged:
            notes.update({"written": written, "unchanged": unchanged})
        unused = self.unused_baselines(doc)
        if unused:
            notes["unused"] = unused
        return notes

    def unused_baselines(self, doc: dict[str, Any]) -> list[str]:
        """Baselines whose suite is gone, judged only when every suite of the repo ran."""
        from harness import baseline

        if not self.outcomes or any(o.error for o in self.outcomes.values()):
            return []
        root = find_root(next(iter(self.outcomes)))
        every = set(suite_files(root / "suites")) if (root / "suites").is_dir() else set()
        if not every or not every <= set(self.outcomes):
            return []
        names = [s["name"] for s in doc["suites"]]
        return [str(p.relative_to(root)) for p in baseline.unused_baselines(root, names)]

    def write_reports(self, doc: dict[str, Any]) -> list[str]:
        """Write the JSON / Markdown reports, the job summary and annotations; return log lines."""
        from harness.fileio import atomic_write_text
        from harness.report import github, write_json
        from harness.report.markdown import render_markdown

        lines: list[str] = []
        if self.options.report_path:
            write_json(self.options.report_path, doc)
            lines.append(f"distill: JSON report written to {display_path(self.options.report_path)}")
        markdown = None
        if self.options.markdown_path or os.environ.get("GITHUB_STEP_SUMMARY"):
            markdown = render_markdown(doc)
        if self.options.markdown_path and markdown is not None:
            atomic_write_text(self.options.markdown_path, markdown)
            lines.append(f"distill: Markdown report written to "
                         f"{display_path(self.options.markdown_path)}")
        if self.options.html_path:
            from harness.report.html import write_html

            write_html(self.options.html_path, doc)
            lines.append(f"distill: HTML report written to {display_path(self.options.html_path)}")
        if markdown is not None and github.write_step_summary(markdown) is not None:
            lines.append("distill: job summary written to $GITHUB_STEP_SUMMARY")
        if self.options.annotations or github.in_github_actions():
            lines.extend(github.report_annotations(doc))
        return lines
