"""GitHub Actions output: workflow-command annotations and the job summary.

Plain Python (no pytest): the plugin and the CLI decide *when* to call these; this module
only knows GitHub's formats.

- :func:`annotations` turns the checks of a run into ``::error``/``::warning`` workflow
  commands that point at the rubric criterion (or the baseline file) that judged them, so a
  failing gate shows up on the line that set the threshold.
- :func:`write_step_summary` appends the Markdown report to ``$GITHUB_STEP_SUMMARY``.

Format reference: GitHub's "Workflow commands for GitHub Actions" (``::error file=…,line=…,
title=…::message``; ``%``, CR and LF escaped in the message, and also ``:`` and ``,`` in the
properties).
"""

# No ``from __future__ import annotations`` here: it would bind the name ``annotations`` that
# the public function below takes (PEP 604 unions evaluate fine on Python 3.10+).
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.report.markdown import owner_line
from harness.results import Check, SuiteResult

#: A suite as a result object or as its report dict (``SuiteResult.to_dict()``); same for a check.
SuiteLike = SuiteResult | Mapping[str, Any]
CheckLike = Check | Mapping[str, Any]

#: GitHub refuses a step summary above 1 MiB (all writes of one step together).
SUMMARY_LIMIT_BYTES = 1024 * 1024

_BASELINE_COMPARES = ("baseline_delta", "baseline_ratio")
_TRUNCATED_NOTE = "\n> Report truncated to fit GitHub's 1 MiB job summary; see the JSON report.\n"


def escape_data(text: str) -> str:
    """Escape the message part of a workflow command (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value of a workflow command (``file=``, ``title=``, ...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command_level(verdict: str, *, strict: bool = False) -> str | None:
    """The workflow command a verdict becomes: ``error``, ``warning``, or None (no annotation).

    ``fail`` and ``error`` are errors; ``warn`` is a warning; ``inconclusive`` is a warning,
    or an error under ``strict`` (where it fails the build); ``pass`` is not annotated.
    """
    if verdict in ("fail", "error"):
        return "error"
    if verdict == "warn":
        return "warning"
    if verdict == "inconclusive":
        return "error" if strict else "warning"
    return None


def check_location(suite: SuiteLike, check: CheckLike) -> tuple[str, int | None]:
    """The file (relative to the repository root) and 1-based line a check's annotation targets.

    A failing or erroring ``baseline_delta``/``baseline_ratio`` check points at the baseline
    file (line 1) when the suite has one; every other check at its criterion's line in the
    rubric. Without a known line the annotation names the file only; without a rubric path,
    the suite file. ``suite`` and ``check`` are result objects or their report dicts.
    """
    s, c = _as_dict(suite), _as_dict(check)
    baseline_path = (s.get("baseline") or {}).get("path")
    if c.get("compare") in _BASELINE_COMPARES and c.get("verdict") in ("fail", "error") and baseline_path:
        return str(baseline_path), 1
    rubric = s.get("rubric") or {}
    rubric_path = rubric.get("path")
    if not rubric_path:
        return str(s.get("path", "")), None
    line = (rubric.get("lines") or {}).get(c.get("criterion"))
    return str(rubric_path), line if isinstance(line, int) and line > 0 else None


def annotation(suite: SuiteLike, check: CheckLike, *, strict: bool = False) -> str | None:
    """One workflow-command line for ``check``, or None when its verdict is not annotated."""
    s, c = _as_dict(suite), _as_dict(check)
    verdict = str(c.get("verdict", ""))
    level = command_level(verdict, strict=strict)
    if level is None:
        return None
    file, line = check_location(s, c)
    name = str(s.get("name", ""))
    props = [f"file={escape_property(file)}"]
    if line is not None:
        props.append(f"line={line}")
    props.append(f"title={escape_property(f'distill {name}')}")
    check_id, prefix = str(c.get("id", "")), f"{name}::"
    item = check_id[len(prefix):] if check_id.startswith(prefix) else check_id
    message = f"{item} {verdict}: {c['message']}" if c.get("message") else f"{item} {verdict}"
    if c.get("examples"):
        message += f"\nexamples: {', '.join(map(str, c['examples']))}"
    responsible = owner_line(c.get("owner"), c.get("playbook"))
    if responsible:
        message += f"\n{responsible}"
    return f"::{level} {','.join(props)}::{escape_data(message)}"


def annotations(results: Sequence[SuiteLike], *, strict: bool = False) -> list[str]:
    """Workflow-command lines (``::error …`` / ``::warning …``) for the checks that need a look.

    ``results`` are :class:`SuiteResult` objects or their report dicts (the ``suites`` of a
    report, which is what an xdist controller holds). One line per failing, erroring, warning
    or inconclusive check, in the run's order, and a warning per traffic drift gap
    (:func:`traffic_annotations`), errors before warnings (GitHub shows only the first few
    of each kind per step). Print each line on its own on stdout, unindented, for
    the runner to pick it up.
    """
    errors: list[str] = []
    warnings: list[str] = []
    for suite in results:
        s = _as_dict(suite)
        for check in s.get("checks") or ():
            line = annotation(s, check, strict=strict)
            if line is None:
                continue
            (errors if line.startswith("::error ") else warnings).append(line)
        warnings.extend(traffic_annotations(s))
    return errors + warnings


def traffic_annotations(suite: SuiteLike) -> list[str]:
    """A ``::warning`` per drift gap of a suite's ``traffic`` block, on the suite file.

    Drift does not fail the gate by itself (the ``scope: traffic`` checks do); it says that
    the suite no longer describes what users send, which is fixed in the suite.
    """
    s = _as_dict(suite)
    traffic = s.get("traffic") or {}
    file = str(s.get("path") or "")
    title = escape_property(f"distill {s.get('name', '')} traffic drift")
    props = (f"file={escape_property(file)}," if file else "") + f"title={title}"
    return [f"::warning {props}::{escape_data(str(d.get('detail', '')))}"
            for d in traffic.get("drift") or ()]


def report_annotations(report: Mapping[str, Any]) -> list[str]:
    """The annotations of a whole report: its checks (under the report's ``strict``), then an
    ``::error`` per suite that could not be run (the report's ``errors``), on the suite file."""
    lines = annotations(report.get("suites") or [], strict=bool(report.get("strict", False)))
    for err in report.get("errors") or ():
        file = str(err.get("suite") or "")
        props = f"file={escape_property(file)}," if file else ""
        message = str(err.get("message") or "the suite could not be run")
        lines.insert(0, f"::error {props}title=distill::{escape_data(message)}")
    return lines


def _as_dict(obj: Any) -> Mapping[str, Any]:
    return obj.to_dict() if isinstance(obj, (SuiteResult, Check)) else obj


def in_github_actions(environ: Mapping[str, str] = os.environ) -> bool:
    """True when running as a GitHub Actions step (``GITHUB_ACTIONS=true``)."""
    return environ.get("GITHUB_ACTIONS") == "true"


def write_step_summary(markdown: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append ``markdown`` to the file ``$GITHUB_STEP_SUMMARY`` names; return that path.

    Returns None (and writes nothing) when the variable is unset or empty. Appends, as GitHub
    expects (other steps' writes are kept), ending with a newline. Text that would take the
    step's summary past GitHub's 1 MiB limit is cut at a line boundary with a note saying so.
    An unwritable file raises ``OSError``.
    """
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    used = path.stat().st_size if path.exists() else 0
    text = _fit(text, SUMMARY_LIMIT_BYTES - used)
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path


def _fit(text: str, budget: int) -> str:
    """``text``, or its longest whole-line prefix that fits ``budget`` bytes with the note."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    room = budget - len(_TRUNCATED_NOTE.encode("utf-8"))
    if room <= 0:
        return ""
    cut = data[:room].decode("utf-8", errors="ignore")
    head = cut[: cut.rfind("\n") + 1] if "\n" in cut else ""
    return head + _TRUNCATED_NOTE
