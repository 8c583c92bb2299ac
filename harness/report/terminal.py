"""Terminal tables (tabulate): one per suite, then pockets, coverage gaps and economics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from harness.report.markdown import ci_label, slice_verdict
from harness.report.numbers import fmt, interval


def suite_lines(suite: Mapping[str, Any]) -> list[str]:
    """The lines the terminal summary prints for one suite of a report."""
    lines: list[str] = []
    verdict = suite.get("verdict", "?").upper()
    teacher, student = suite.get("teacher", {}), suite.get("student", {})
    cached = [r for r, m in (("teacher", teacher), ("student", student)) if m.get("cached")]
    lines.append(f"distill suite {suite['name']} v{suite['version']} ({suite['n']} examples, "
                 f"rubric {suite['rubric']['id']} v{suite['rubric']['version']}): {verdict}"
                 + (f"  [cached: {', '.join(cached)}]" if cached else ""))
    lines.extend(f"note: {note}" for note in suite.get("notes") or [])
    rows = suite.get("slices") or []
    if rows:
        metric = rows[0].get("metric", "")
        # For an error rate a negative delta is the student doing better: say which way is good.
        delta = "delta" if rows[0].get("higher_is_better", True) else "delta (lower is better)"
        table = [[r["slice"], r["n"], fmt(r["teacher"]), fmt(r["student"]), f"{r['delta']:+.3f}",
                  interval(r.get("ci")), slice_verdict(r)] for r in rows]
        lines.append(tabulate(table, headers=["slice", "n", f"teacher {metric}",
                                              f"student {metric}", delta, ci_label(rows[0]),
                                              "verdict"],
                              tablefmt="simple", disable_numparse=True))
    other = [c for c in suite.get("checks", []) if c["verdict"] != "pass"]
    if other:
        lines.append("")
        lines.append("checks not passing:")
        table = [[f"{c['criterion']}[{c['slice']}]", c["verdict"], fmt(c["value"], 4), c["n"],
                  ", ".join(f"{k} {v}" for k, v in c["threshold"].items()),
                  fmt(c.get("p_value"), 4), fmt(c.get("q_value"), 4)] for c in other]
        headers = ["check", "verdict", "value", "n", "threshold", "p", "q"]
        if any(c.get("owner") or c.get("playbook") for c in other):
            from harness.report.markdown import owner_line

            headers.append("owner — playbook")
            for row, c in zip(table, other, strict=True):
                row.append(owner_line(c.get("owner"), c.get("playbook")) or "-")
        lines.append(tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True))
        # The why of each, which the table has no room for (an error's reason is only here).
        for c in other:
            lines.append(f"  {c['id'].split('::', 1)[-1]}: {c['message']}")
    pockets = suite.get("pockets") or []
    if pockets:
        lines.append("")
        lines.append("hidden regression pockets:")
        table = [[p["slice"], p["n"], fmt(p["teacher"]), fmt(p["student"]), f"{p['delta']:+.3f}",
                  fmt(p.get("q_value"), 4), "yes" if p["confirmed"] else "no"] for p in pockets]
        lines.append(tabulate(table, headers=["pocket", "n", "teacher", "student", "delta", "q",
                                              "confirmed"], tablefmt="simple", disable_numparse=True))
    gaps = suite.get("coverage_gaps") or []
    if gaps:
        lines.append("")
        lines.append("coverage gaps:")
        table = [[g["kind"], g["slice"], g["n"], g.get("needed") or "-", g["detail"][:80]]
                 for g in gaps[:15]]
        lines.append(tabulate(table, headers=["kind", "slice", "n", "needed", "detail"],
                              tablefmt="simple", disable_numparse=True))
        if len(gaps) > 15:
            lines.append(f"... and {len(gaps) - 15} more (see the JSON report)")
    lines.extend(traffic_lines(suite.get("traffic")))
    audit = suite.get("teacher_audit") or {}
    if audit:
        lines.append("")
        lines.append(f"teacher audit: accuracy {fmt(audit.get('accuracy'))}, inherited error rate "
                     f"{fmt(audit.get('inherited_error_rate'))}, weak slices "
                     f"{len(audit.get('weak_slices') or [])}, suspect outputs "
                     f"{len(audit.get('suspect_ids') or [])}")
    lines.extend(invalid_lines(suite))
    lines.extend(judge_lines(suite))
    lines.extend(economics_lines(suite.get("economics") or {}))
    return lines


def judge_lines(suite: Mapping[str, Any]) -> list[str]:
    """The judges' health, usage and cost, and the verdicts behind a failing judge check."""
    from harness.report.judging import HEADERS, agreement_lines, check_verdicts, judge_rows

    rows = judge_rows(suite)
    if not rows:
        return []
    lines = ["", tabulate(rows, headers=HEADERS, tablefmt="simple"), *agreement_lines(suite)]
    for check in suite.get("checks") or ():
        if check.get("verdict") in ("fail", "inconclusive"):
            shown = check_verdicts(suite, check)
            if shown:
                lines.append(f"{check['id']}: the judge's verdicts (order: verdict):")
                lines.extend(f"  {line}" for line in shown)
    return lines


def invalid_lines(suite: Mapping[str, Any]) -> list[str]:
    """Per model with invalid answers (no label matched, or empty): how many, their share
    and the first few as the model wrote them."""
    from harness.report.markdown import invalid_examples

    lines = [f"  {role}: {block['n']} ({100 * block['share']:.1f}%)"
             + (f", e.g. {shown}" if shown else "")
             for role, block, shown in invalid_examples(suite)]
    return ["", "invalid answers (matching no label, or empty):", *lines] if lines else []


def economics_lines(econ: Mapping[str, Any]) -> list[str]:
    flat = dict(econ.get("metrics") or {})
    timing = econ.get("timing")
    if isinstance(timing, Mapping):
        flat.update(timing.get("metrics") or {})
    if not flat and not econ.get("candidates"):
        return []
    lines = ["", "economics scorecard:"]
    if flat:
        lines.append(tabulate([[k, fmt(v, 4)] for k, v in sorted(flat.items())],
                              headers=["figure", "value"], tablefmt="simple", disable_numparse=True))
    cands = econ.get("candidates") or []
    if cands:
        frontier = set(econ.get("frontier") or [])
        rec = econ.get("recommended")
        table = [[c["name"], c.get("params") or "-", fmt(c.get("quality_ratio")),
                  fmt((c.get("metrics") or {}).get("latency_improvement")),
                  "yes" if c["passes"] else "no", "yes" if c["name"] in frontier else "",
                  "<- recommended" if c["name"] == rec else ""] for c in cands]
        lines.append(tabulate(table, headers=["candidate", "params", "quality ratio",
                                              "speed-up", "passes", "frontier", ""],
                              tablefmt="simple", disable_numparse=True))
        if econ.get("frontier_plot"):
            lines.append(f"frontier plot: {econ['frontier_plot']} (next to the JSON report)")
    return lines


def traffic_lines(traffic: Mapping[str, Any] | None) -> list[str]:
    """The lines of a suite's ``traffic`` block: agreement, the drift found, traffic pockets."""
    if not traffic:
        return []
    head = f"traffic: {traffic.get('n', 0)} rows"
    if traffic.get("agreement") is not None:
        head += f", student-teacher {traffic.get('metric') or 'agreement'} {fmt(traffic['agreement'])}"
    if traffic.get("uncovered_fraction") is not None:
        head += f", {100 * traffic['uncovered_fraction']:.1f}% far from every eval example"
    tested = traffic.get("features") or []
    lines = ["", head + (f"; {len(tested)} features tested for drift" if tested else "")]
    drift = traffic.get("drift") or []
    if drift:
        table = [[d["kind"], d["feature"], fmt(d.get("statistic"), 4),
                  fmt(d.get("q_value", d.get("p_value")), 4), d["detail"][:90]] for d in drift[:15]]
        lines.append(tabulate(table, headers=["drift", "feature", "statistic", "q", "detail"],
                              tablefmt="simple", disable_numparse=True))
        if len(drift) > 15:
            lines.append(f"... and {len(drift) - 15} more (see the JSON report)")
    else:
        lines.append("no drift between the suite and traffic")
    pockets = traffic.get("pockets") or []
    if pockets:
        lines.append("traffic pockets (student against teacher, no labels):")
        table = [[p["slice"], p["n"], p.get("metric") or "-", fmt(p["student"]),
                  fmt(p.get("q_value"), 4), "yes" if p["confirmed"] else "no"] for p in pockets]
        lines.append(tabulate(table, headers=["pocket", "n", "metric", "student", "q", "confirmed"],
                              tablefmt="simple", disable_numparse=True))
    for note in traffic.get("notes") or []:
        lines.append(f"note: {note}")
    return lines


def report_lines(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for suite in report.get("suites", []):
        lines.extend(suite_lines(suite))
        lines.append("")
    for err in report.get("errors", []) or []:
        lines.append(f"error: {err.get('message')}")
    lines.append(f"distill verdict: {report.get('verdict', '?').upper()}")
    return lines
