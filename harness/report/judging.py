"""The judges' block of a report as rows, shared by the terminal and Markdown renderers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.report.numbers import fmt

HEADERS = ["judge", "mode", "n", "win rate", "LC win rate", "consistency", "first preferred",
           "longer preferred", "invalid", "requests (cached)", "usd (this run)"]


def judge_rows(suite: Mapping[str, Any]) -> list[list[str]]:
    """One row per judge of the suite's report (none without judges)."""
    rows = []
    for name, j in sorted((suite.get("judges") or {}).items()):
        lc = fmt(j.get("lc_win_rate"))
        if j.get("lc_ci"):
            lc += f" [{fmt(j['lc_ci'][0])}, {fmt(j['lc_ci'][1])}]"
        usd = "–" if j.get("usd") is None else f"{j['usd']:.4f} ({j.get('usd_this_run') or 0:.4f})"
        rows.append([name, j.get("mode", ""), str(j.get("n", "")), fmt(j.get("win_rate")), lc,
                     fmt(j.get("consistency")), fmt(j.get("first_preferred")),
                     fmt(j.get("longer_preferred")), _pct(j.get("invalid_rate")),
                     f"{j.get('requests', 0)} ({j.get('cached', 0)})", usd])
    return rows


def agreement_lines(suite: Mapping[str, Any]) -> list[str]:
    """A line per judge with people's labels: agreement and Cohen's kappa."""
    out = []
    for name, j in sorted((suite.get("judges") or {}).items()):
        a = j.get("agreement")
        if a:
            out.append(f"judge {name} agrees with people on {fmt(a.get('rate'))} of "
                       f"{a.get('n')} labelled examples (Cohen's kappa {fmt(a.get('kappa'))})")
    return out


def check_verdicts(suite: Mapping[str, Any], check: Mapping[str, Any],
                   limit: int = 5) -> list[str]:
    """For a failing judge check: its example ids with the judge's verdicts in each order."""
    metric = str(check.get("metric", ""))
    if not metric.startswith("judge:"):
        return []
    verdicts = ((suite.get("judges") or {}).get(metric.split(":", 1)[1]) or {}).get("verdicts")
    verdicts = verdicts or {}
    ids = [i for i in check.get("examples") or () if i in verdicts] or list(verdicts)
    return [f"{i}: {', '.join(verdicts[i])}" for i in ids[:limit]]


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"
