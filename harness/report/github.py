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

from harness.results import Check, SuiteResult

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


def check_location(suite: SuiteResult, check: Check) -> tuple[str, int | None]:
    """The file (relative to the repository root) and 1-based line a check's annotation targets.

    A failing or erroring ``baseline_delta``/``baseline_ratio`` check points at the baseline
    file (line 1) when the suite has one; every other check at its criterion's line in the
    rubric. Without a known line the annotation names the file only; without a rubric path,
    the suite file.
    """
    baseline_path = (suite.baseline or {}).get("path")
    if check.compare in _BASELINE_COMPARES and check.verdict in ("fail", "error") and baseline_path:
        return str(baseline_path), 1
    rubric = suite.rubric or {}
    rubric_path = rubric.get("path")
    if not rubric_path:
        return suite.path, None
    line = (rubric.get("lines") or {}).get(check.criterion)
    return str(rubric_path), int(line) if isinstance(line, int) and line > 0 else None


def annotation(suite: SuiteResult, check: Check, *, strict: bool = False) -> str | None:
    """One workflow-command line for ``check``, or None when its verdict is not annotated."""
    level = command_level(check.verdict, strict=strict)
    if level is None:
        return None
    file, line = check_location(suite, check)
    props = [f"file={escape_property(file)}"]
    if line is not None:
        props.append(f"line={line}")
    props.append(f"title={escape_property(f'distill {suite.name}')}")
    prefix = f"{suite.name}::"
    item = check.id[len(prefix):] if check.id.startswith(prefix) else check.id
    message = f"{item} {check.verdict}: {check.message}" if check.message else f"{item} {check.verdict}"
    if check.examples:
        message += f"\nexamples: {', '.join(check.examples)}"
    return f"::{level} {','.join(props)}::{escape_data(message)}"


def annotations(results: Sequence[SuiteResult], *, strict: bool = False) -> list[str]:
    """Workflow-command lines (``::error …`` / ``::warning …``) for the checks that need a look.

    One line per failing, erroring, warning or inconclusive check, in the run's order, errors
    before warnings (GitHub shows only the first few of each kind per step). Print each line on
    its own on stdout, unindented, for the runner to pick it up.
    """
    errors: list[str] = []
    warnings: list[str] = []
    for suite in results:
        for check in suite.checks:
            line = annotation(suite, check, strict=strict)
            if line is None:
                continue
            (errors if line.startswith("::error ") else warnings).append(line)
    return errors + warnings


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
