"""Markdown report (GitHub job summary): the verdict first, then what failed and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.numbers import fmt, interval

ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "warn": "⚠️", "error": "💥"}


def slice_verdict(row: Mapping[str, Any]) -> str:
    """A slice row's verdict, with the checks that errored beside it (``fail (+1 error)``)."""
    errors = row.get("errors") or []
    more = f" (+{len(errors)} error{'s' if len(errors) > 1 else ''})" if errors else ""
    return f"{row.get('verdict', '')}{more}"


def _f(x: Any, digits: int = 3) -> str:
    return fmt(x, digits, missing="–")


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def owner_line(owner: Any, playbook: Any) -> str:
    """Who answers a failing check and what they do: ``owner @org/nlp — playbook docs/x.md``
    (either part alone when only one is set; empty when neither is)."""
    parts = []
    if owner:
        parts.append(f"owner {owner}")
    if playbook:
        parts.append(f"playbook {playbook}")
    return " — ".join(parts)


def invalid_examples(suite: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], str]]:
    """(model, its ``invalid`` block, the first few invalid answers as quoted text) for each
    model of ``suite`` with invalid answers."""
    import json

    def quoted(text: str, limit: int = 40) -> str:
        return json.dumps(text if len(text) <= limit else text[:limit - 1] + "…",
                          ensure_ascii=False)

    out = []
    for role in ("teacher", "student"):
        block = (suite.get(role) or {}).get("invalid")
        if block:
            shown = ", ".join(f"{e['id']} {quoted(e['answer'])}" if "answer" in e else
                              str(e["id"]) for e in block.get("examples") or [])
            out.append((role, block, shown))
    return out


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_esc(str(c)) for c in row) + " |" for row in rows]
    return out


def ci_label(row: Mapping[str, Any]) -> str:
    """A CI column's header: the two-sided level of the row's interval ("90% CI"); a row
    without one is from a report written before the level was recorded (95%)."""
    return f"{100 * float(row.get('confidence', 0.95)):.4g}% CI"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    verdict = report.get("verdict", "?")
    lines = [f"# distill gate: {ICON.get(verdict, '')} {verdict.upper()}", ""]
    suites = report.get("suites", [])
    summary_rows = []
    for s in suites:
        counts: dict[str, int] = {}
        for c in s.get("checks", []):
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        summary_rows.append([s["name"], f"{ICON.get(s['verdict'], '')} {s['verdict']}", s["n"],
                             ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))])
    if summary_rows:
        lines += _table(["suite", "verdict", "examples", "checks"], summary_rows)
        lines.append("")
    for err in report.get("errors", []) or []:
        lines.append(f"- 💥 `{_esc(err.get('suite', ''))}`: {_esc(err.get('message', ''))}")
    for s in suites:
        lines += _suite(s)
    return "\n".join(lines).rstrip() + "\n"


def _suite(s: Mapping[str, Any]) -> list[str]:
    lines = [f"## {s['name']} v{s['version']} — {ICON.get(s['verdict'], '')} {s['verdict']}", ""]
    lines.append(f"{s['n']} examples · rubric `{s['rubric']['id']}` v{s['rubric']['version']} · "
                 f"teacher `{s['teacher']['fingerprint'][:12]}` · student "
                 f"`{s['student']['fingerprint'][:12]}`")
    lines.append("")
    if s.get("notes"):
        lines += [f"- note: {_esc(note)}" for note in s["notes"]] + [""]
    failing = [c for c in s.get("checks", []) if c["verdict"] in ("fail", "error")]
    if failing:
        lines.append("### Failing checks")
        lines.append("")
        for c in failing:
            lines.append(f"- {ICON[c['verdict']]} **{_esc(c['id'])}** — {_esc(c['message'])}")
            if c.get("examples"):
                lines.append(f"  - examples: {', '.join('`' + e + '`' for e in c['examples'])}")
            responsible = owner_line(c.get("owner"), c.get("playbook"))
            if responsible:
                lines.append(f"  - {_esc(responsible)}")
        lines.append("")
    other = [c for c in s.get("checks", []) if c["verdict"] in ("inconclusive", "warn")]
    if other:
        lines.append("### Inconclusive and warnings")
        lines.append("")
        for c in other:
            lines.append(f"- {ICON[c['verdict']]} **{_esc(c['id'])}** — {_esc(c['message'])}")
            responsible = owner_line(c.get("owner"), c.get("playbook"))
            if responsible:
                lines.append(f"  - {_esc(responsible)}")
        lines.append("")
    rows = s.get("slices") or []
    if rows:
        metric = rows[0].get("metric", "")
        lines.append("### Slices")
        lines.append("")
        lines += _table(["slice", "n", f"teacher {metric}", f"student {metric}", "delta",
                         ci_label(rows[0]), "verdict"],
                        [[r["slice"], r["n"], _f(r["teacher"]), _f(r["student"]),
                          f"{r['delta']:+.3f}",
                          interval(r.get("ci"), missing="–"),
                          f"{ICON.get(r.get('verdict', ''), '')} {slice_verdict(r)}"]
                         for r in rows])
        lines.append("")
    pockets = s.get("pockets") or []
    if pockets:
        lines.append("### Hidden regression pockets")
        lines.append("")
        lines += _table(["pocket", "n", "teacher", "student", "delta", "q", "confirmed"],
                        [[f"`{p['slice']}`", p["n"], _f(p["teacher"]), _f(p["student"]),
                          f"{p['delta']:+.3f}", _f(p.get("q_value"), 4),
                          "yes" if p["confirmed"] else "no"] for p in pockets])
        lines.append("")
    gaps = s.get("coverage_gaps") or []
    if gaps:
        lines.append("### Coverage gaps")
        lines.append("")
        lines += _table(["kind", "slice", "n", "needed", "detail"],
                        [[g["kind"], f"`{g['slice']}`", g["n"], g.get("needed") or "–", g["detail"]]
                         for g in gaps])
        lines.append("")
    lines += _traffic(s.get("traffic"))
    audit = s.get("teacher_audit") or {}
    if audit:
        lines.append("### Teacher audit")
        lines.append("")
        lines.append(f"Teacher accuracy {_f(audit.get('accuracy'))}; inherited error rate "
                     f"{_f(audit.get('inherited_error_rate'))}.")
        weak = audit.get("weak_slices") or []
        if weak:
            lines.append("Weak teacher slices: " + ", ".join(
                f"`{w['slice']}` ({_f(w.get('accuracy'))})" for w in weak))
        suspects = audit.get("suspect_ids") or []
        if suspects:
            lines.append("Suspect teacher outputs (invalid answers, then wrong and confident): "
                         + ", ".join(f"`{i}`" for i in suspects[:10]))
        lines.append("")
    invalid = invalid_examples(s)
    if invalid:
        lines += ["### Invalid answers", "",
                  "Answers that matched no label (or were empty): wrong for every correctness "
                  "metric, counted in `invalid_rate`.", ""]
        lines += _table(["model", "invalid", "share", "examples"],
                        [[role, b["n"], f"{100 * b['share']:.1f}%", shown or "–"]
                         for role, b, shown in invalid])
        lines.append("")
    lines += _judges(s)
    lines += _economics(s.get("economics") or {})
    lines += _trend((s.get("baseline") or {}).get("trend"))
    return lines


def _judges(s: Mapping[str, Any]) -> list[str]:
    """The judges' health, usage and cost; the verdicts behind each failing judge check."""
    from harness.report.judging import HEADERS, agreement_lines, check_verdicts, judge_rows

    rows = judge_rows(s)
    if not rows:
        return []
    lines = ["### Judges", "", *_table(HEADERS, rows), ""]
    lines += [f"{line}." for line in agreement_lines(s)]
    for check in s.get("checks") or ():
        if check.get("verdict") in ("fail", "inconclusive"):
            shown = check_verdicts(s, check)
            if shown:
                lines += [f"Judge verdicts behind `{check['id']}` (order: verdict): "
                          + "; ".join(f"`{_esc(v)}`" for v in shown), ""]
    return lines


def _trend(trend: Mapping[str, Any] | None) -> list[str]:
    """The "Trend" section: the quality ratio of the last releases of the baseline (its git
    history, :func:`harness.history.trend_summary`) and the change since launch."""
    if not trend or not trend.get("releases"):
        return []
    launch = trend.get("launch") or {}
    rows = [[f"`{(r.get('commit') or '')[:7]}`", str(r.get("date") or "")[:10],
             _f(r.get("quality_ratio"))] for r in trend["releases"]]
    lines = ["### Trend", ""]
    lines += _table(["release", "date", "quality ratio"], rows)
    lines.append("")
    change = trend.get("quality_ratio_change")
    if change is not None:
        lines.append(f"Quality ratio {change:+.3f} since launch "
                     f"(`{(launch.get('commit') or '')[:7]}`, {str(launch.get('date') or '')[:10]}, "
                     f"{_f(launch.get('quality_ratio'))}); `distill history` shows every release.")
        lines.append("")
    return lines


def _traffic(traffic: Mapping[str, Any] | None) -> list[str]:
    """The ``### Traffic`` section: agreement on traffic, the drift found, traffic pockets."""
    if not traffic:
        return []
    lines = ["### Traffic", ""]
    facts = [f"{traffic.get('n', 0)} traffic rows"]
    if traffic.get("agreement") is not None:
        facts.append(f"student–teacher {traffic.get('metric') or 'agreement'} "
                     f"{_f(traffic['agreement'])}")
    if traffic.get("uncovered_fraction") is not None:
        facts.append(f"{100 * traffic['uncovered_fraction']:.1f}% far from every eval example")
    tested = traffic.get("features") or []
    if tested:
        facts.append(f"{len(tested)} features tested for drift")
    lines += [" · ".join(facts), ""]
    drift = traffic.get("drift") or []
    if drift:
        lines += _table(["drift", "feature", "statistic", "q", "what it means"],
                        [[d["kind"], f"`{d['feature']}`", _f(d.get("statistic"), 4),
                          _f(d.get("q_value", d.get("p_value")), 4), d["detail"]] for d in drift])
    else:
        lines.append("No drift between the suite and traffic.")
    lines.append("")
    pockets = traffic.get("pockets") or []
    if pockets:
        lines += _table(["traffic pocket", "n", "metric", "student", "q", "confirmed"],
                        [[f"`{p['slice']}`", p["n"], p.get("metric") or "–", _f(p["student"]),
                          _f(p.get("q_value"), 4), "yes" if p["confirmed"] else "no"]
                         for p in pockets])
        lines.append("")
    notes = traffic.get("notes") or []
    for note in notes:
        lines.append(f"> {_esc(note)}")
    if notes:
        lines.append("")
    return lines


def _economics(econ: Mapping[str, Any]) -> list[str]:
    metrics = dict(econ.get("metrics") or {})
    timing = econ.get("timing")
    if isinstance(timing, Mapping):
        metrics.update(timing.get("metrics") or {})
    if not metrics and not econ.get("candidates"):
        return []
    lines = ["### Economics scorecard", ""]
    if metrics:
        lines += _table(["figure", "value"], [[k, _f(v, 4)] for k, v in sorted(metrics.items())])
        lines.append("")
    cands = econ.get("candidates") or []
    if cands:
        frontier = set(econ.get("frontier") or [])
        rec = econ.get("recommended")
        lines += _table(["candidate", "params", "quality ratio", "speed-up", "passes", "frontier",
                         "recommended"],
                        [[c["name"], c.get("params") or "–", _f(c.get("quality_ratio")),
                          _f((c.get("metrics") or {}).get("latency_improvement")),
                          "yes" if c["passes"] else "no", "yes" if c["name"] in frontier else "",
                          "⭐" if c["name"] == rec else ""] for c in cands])
        lines.append("")
        if econ.get("frontier_plot"):
            lines.append(f"![Pareto frontier]({econ['frontier_plot']})")
            lines.append("")
    return lines
