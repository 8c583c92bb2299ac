"""The HTML report: one self-contained page to look at what failed, teacher and student side by side.

:func:`render_html` takes the report *dict* (the JSON shape), so ``distill report r.json --format
html`` draws a stored report exactly as a live run does. The page is a Jinja2 template with
autoescaping on: every string of the report (inputs, answers, slice names, messages) reaches the
page escaped. No request leaves the page: a Content-Security-Policy meta allows no source but
``data:`` images, and the one style block and the one script by their ``sha256-`` hashes. The
tables are plain ``<table>`` elements and the examples ``<details>``, so it reads with JavaScript
off; the script only sorts, filters and expands.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from harness.fileio import atomic_write_text

ICON = {"pass": "✔", "fail": "✘", "inconclusive": "?", "warn": "!", "error": "‼"}
#: Verdicts whose checks list their examples under them.
EXAMPLE_VERDICTS = ("fail", "inconclusive", "warn")
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
#: Characters of one input, reference or answer shown on the page (the JSON report keeps all):
#: long documents cited by many checks would otherwise make the page heavy and the diff slow.
MAX_TEXT = 4000


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one self-contained HTML page."""
    env = _environment()
    style = _asset("report.css")
    script = _asset("report.js")
    csp = ("default-src 'none'; img-src data:; "
           f"style-src '{_sha256(style)}'; script-src '{_sha256(script)}'; "
           "base-uri 'none'; form-action 'none'")
    suites = [_suite_view(s) for s in report.get("suites") or []]
    return env.get_template("report.html.j2").render(
        report=report, suites=suites, csp=csp, style=Markup(style), script=Markup(script),
        icon=ICON, errors=report.get("errors") or [])


def write_html(path: Path, report: Mapping[str, Any]) -> None:
    """Write :func:`render_html` of ``report`` to ``path`` atomically."""
    atomic_write_text(Path(path), render_html(report))


# --------------------------------------------------------------------------- the pieces

@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import ChainableUndefined, Environment, PackageLoader

    # Autoescaping on for every template: each value of the report reaches the page as text.
    # Missing optional fields of an older report render empty (ChainableUndefined), not an error.
    env = Environment(loader=PackageLoader("harness.report", "templates"), autoescape=True,
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_number, signed=fmt_signed, pct=fmt_pct, text=show_text)
    env.globals.update(ci_svg=ci_svg, diff_html=diff_html, threshold_text=threshold_text,
                       trend_svg=trend_svg)
    return env


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return (resources.files("harness.report") / "templates" / name).read_text("utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def fmt_number(x: Any, digits: int = 3) -> str:
    """A report number for people: ``–`` for none, a few significant digits otherwise."""
    if x is None or isinstance(x, bool):
        return "–" if x is None else ("yes" if x else "no")
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -digits):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}"
    return str(x)


def fmt_signed(x: Any, digits: int = 3) -> str:
    """A number with its sign (``+0.021``), as :func:`fmt_number` for anything else."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return f"{x:+.{digits}f}"
    return fmt_number(x, digits)


def fmt_pct(x: Any) -> str:
    """A share as a percentage with one decimal (``–`` for none)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return f"{100 * x:.1f}%"
    return "–"


def show_text(value: Any) -> str:
    """An input, reference or answer as plain text (several fields one per line; cut at
    :data:`MAX_TEXT` characters with a note)."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        text = "\n".join(f"{k}: {v}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "\n".join(f"• {v}" for v in value)
    else:
        text = str(value)
    if len(text) > MAX_TEXT:
        return f"{text[:MAX_TEXT]} … ({len(text) - MAX_TEXT:,} more characters in the JSON report)"
    return text


def threshold_text(threshold: Mapping[str, Any] | None) -> str:
    """A check's threshold as people read it: ``min -0.0500``."""
    if not threshold:
        return "–"
    return ", ".join(f"{k} {fmt_number(v, 4)}" for k, v in threshold.items())


def diff_html(teacher: Any, student: Any) -> Markup:
    """The student's answer with the differences from the teacher's marked.

    Words only the teacher said are ``<del>``, words only the student said ``<ins>``; every
    piece of text is escaped before it is wrapped.
    """
    a, b = _TOKEN.findall(show_text(teacher)), _TOKEN.findall(show_text(student))
    if a == b:
        return Markup(escape("".join(b)))
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(str(escape("".join(a[i1:i2]))))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return Markup("".join(out))


def ci_svg(ci: Sequence[Any] | None, point: Any, threshold: Mapping[str, Any] | None,
           axis: tuple[float, float], verdict: str = "") -> Markup:
    """An interval drawn to scale on ``axis`` with the threshold as a dashed line (inline SVG)."""
    width, height, pad = 180.0, 18.0, 4.0
    lo_axis, hi_axis = axis
    span = (hi_axis - lo_axis) or 1.0

    def x(v: float) -> float:
        return round(pad + (width - 2 * pad) * (min(max(v, lo_axis), hi_axis) - lo_axis) / span, 2)

    parts = [f'<svg class="ci" width="{int(width)}" height="{int(height)}" '
             f'viewBox="0 0 {int(width)} {int(height)}" role="img" aria-label="'
             f'{escape(_ci_label(ci, point, threshold))}">',
             f'<line x1="{pad}" y1="{height / 2}" x2="{width - pad}" y2="{height / 2}" '
             'stroke="#ddd" stroke-width="1"/>']
    if lo_axis < 0 < hi_axis:
        parts.append(f'<line x1="{x(0.0)}" y1="3" x2="{x(0.0)}" y2="{height - 3}" stroke="#999" '
                     'stroke-width="1"/>')
    for bound in ("min", "max"):
        t = (threshold or {}).get(bound)
        if t is not None and _finite(t):
            parts.append(f'<line x1="{x(t)}" y1="1" x2="{x(t)}" y2="{height - 1}" stroke="#b00" '
                         'stroke-width="1.5" stroke-dasharray="3,2"/>')
    color = {"fail": "#c0392b", "inconclusive": "#b7950b", "warn": "#ca6f1e",
             "error": "#7d3c98"}.get(verdict, "#1f618d")
    if ci is not None and len(ci) == 2 and _finite(ci[0]) and _finite(ci[1]):
        parts.append(f'<line x1="{x(ci[0])}" y1="{height / 2}" x2="{x(ci[1])}" y2="{height / 2}" '
                     f'stroke="{color}" stroke-width="4" stroke-linecap="round"/>')
    if _finite(point):
        parts.append(f'<circle cx="{x(point)}" cy="{height / 2}" r="3.5" fill="{color}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_svg(releases: Sequence[Mapping[str, Any]], key: str = "quality_ratio") -> Markup:
    """The quality ratio of each release as a line (inline SVG), oldest left; empty if fewer than 2."""
    values = [(str(r.get("commit") or "")[:7], r.get(key)) for r in releases]
    points = [(c, float(v)) for c, v in values if v is not None and _finite(v)]
    if len(points) < 2:
        return Markup("")
    width, height, pad = 360.0, 90.0, 14.0
    lo, hi = axis_of(v for _, v in points)
    step = (width - 2 * pad) / (len(points) - 1)

    def y(v: float) -> float:
        return round(height - pad - (height - 2 * pad) * (v - lo) / ((hi - lo) or 1.0), 2)

    xy = [(round(pad + i * step, 2), y(v)) for i, (_, v) in enumerate(points)]
    label = ", ".join(f"{c} {v:.3f}" for c, v in points)
    parts = [f'<svg class="trend" width="{int(width)}" height="{int(height)}" '
             f'viewBox="0 0 {int(width)} {int(height)}" role="img" '
             f'aria-label="{escape(key)} by release: {escape(label)}">',
             '<polyline fill="none" stroke="#1f618d" stroke-width="2" points="'
             + " ".join(f"{a},{b}" for a, b in xy) + '"/>']
    parts += [f'<circle cx="{a}" cy="{b}" r="3" fill="#1f618d"/>' for a, b in xy]
    for (a, b), (_, v) in ((xy[0], points[0]), (xy[-1], points[-1])):
        parts.append(f'<text x="{a}" y="{max(b - 6, 10)}" font-size="10" text-anchor="middle">'
                     f"{v:.3f}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _ci_label(ci: Sequence[Any] | None, point: Any, threshold: Mapping[str, Any] | None) -> str:
    inside = f"[{fmt_signed(ci[0])}, {fmt_signed(ci[1])}]" if ci and len(ci) == 2 else "no interval"
    return f"value {fmt_signed(point)}, CI {inside}, threshold {threshold_text(threshold)}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def axis_of(values: Iterable[Any]) -> tuple[float, float]:
    """A common axis for intervals and thresholds: their range, padded a little."""
    nums = [float(v) for v in values if _finite(v)]
    if not nums:
        return (0.0, 1.0)
    lo, hi = min(nums), max(nums)
    pad = (hi - lo) * 0.08 or max(abs(hi), 1.0) * 0.1
    return (lo - pad, hi + pad)


def _interval_values(item: Mapping[str, Any]) -> list[Any]:
    return [*(item.get("ci") or []), item.get("value", item.get("delta")),
            *(item.get("threshold") or {}).values()]


# --------------------------------------------------------------------------- one suite

def _suite_view(s: Mapping[str, Any]) -> dict[str, Any]:
    """What the template needs of one suite beyond the report: axes, examples per check, owners."""
    checks = list(s.get("checks") or [])
    examples = _with_judge_verdicts(s.get("examples") or {}, s.get("judges") or {})
    by_check: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    by_pocket: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
    for ex_id, ex in examples.items():
        for cid in ex.get("checks") or []:
            by_check.setdefault(cid, []).append((ex_id, ex))
        for slice_name in ex.get("pockets") or []:
            by_pocket.setdefault((ex.get("source") or "eval", slice_name), []).append((ex_id, ex))
    for c in checks:  # examples a report from before this field cites by id only
        if c["id"] not in by_check:
            by_check[c["id"]] = [(i, examples[i]) for i in c.get("examples") or [] if i in examples]
    axes: dict[str, tuple[float, float]] = {}
    for c in checks:
        axes.setdefault(c["criterion"], (math.inf, -math.inf))
    for name in axes:
        axes[name] = axis_of(v for c in checks if c["criterion"] == name for v in _interval_values(c))
    slices = list(s.get("slices") or [])
    slice_checks = _slice_thresholds(slices, checks)
    slice_axis = axis_of([v for r in slices for v in _interval_values(r)]
                         + [v for t in slice_checks.values() for v in t.values()])
    owners = sorted({c["owner"] for c in checks if c.get("owner")})
    order = {"fail": 0, "error": 1, "inconclusive": 2, "warn": 3, "pass": 4}
    counts: dict[str, int] = {}
    for c in checks:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    econ = s.get("economics") or {}
    return {
        "s": s,
        "anchor": "suite-" + re.sub(r"[^a-z0-9_-]", "-", str(s.get("name", "")).lower()),
        "counts": dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], 9))),
        "checks": sorted(checks, key=lambda c: order.get(c["verdict"], 9)),
        "shown": [c for c in checks if c["verdict"] in EXAMPLE_VERDICTS],
        "by_check": by_check,
        "pocket_examples": lambda slice_name, source="eval": by_pocket.get((source, slice_name), []),
        "axes": axes,
        "slice_axis": slice_axis,
        "slice_thresholds": slice_checks,
        "owners": owners,
        "examples_n": len(examples),
        "metrics": _economics_metrics(econ),
        "frontier_png": frontier_data_uri(s),
        "judges": s.get("judges") or {},
        "trend": (s.get("baseline") or {}).get("trend") or {},
        "audit_scalars": {k: v for k, v in (s.get("teacher_audit") or {}).items()
                          if not isinstance(v, (list, dict))},
        "audit_lists": {k: v for k, v in (s.get("teacher_audit") or {}).items()
                        if isinstance(v, list) and v},
    }


def _with_judge_verdicts(examples: Mapping[str, Mapping[str, Any]], judges: Mapping[str, Any]
                         ) -> dict[str, Mapping[str, Any]]:
    """The examples with each judge's verdicts on them (the ``judges`` block keeps them by id)."""
    out: dict[str, Mapping[str, Any]] = {}
    for ex_id, ex in examples.items():
        said = {name: (j.get("verdicts") or {}).get(ex_id) for name, j in judges.items()
                if isinstance(j, Mapping)}
        said = {name: v for name, v in said.items() if v}
        out[ex_id] = {**ex, "judges": {**(ex.get("judges") or {}), **said}} if said else ex
    return out


def _slice_thresholds(slices: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]]
                      ) -> dict[str, Mapping[str, Any]]:
    """Slice name -> the threshold of the teacher-delta check on the table's metric there."""
    out: dict[str, Mapping[str, Any]] = {}
    for row in slices:
        for c in checks:
            if (c["slice"] == row["slice"] and c.get("metric") == row.get("metric")
                    and c.get("compare") == "teacher_delta" and c.get("threshold")):
                out[row["slice"]] = c["threshold"]
                break
    return out


def _economics_metrics(econ: Mapping[str, Any]) -> dict[str, Any]:
    metrics = dict(econ.get("metrics") or {})
    timing = econ.get("timing")
    if isinstance(timing, Mapping):
        metrics.update(timing.get("metrics") or {})
    return dict(sorted(metrics.items()))


def frontier_data_uri(s: Mapping[str, Any]) -> str | None:
    """The candidates' frontier as a ``data:image/png`` URI (None without candidates or matplotlib)."""
    from harness.report.frontier_plot import frontier_png, report_frontier

    drawn = report_frontier(s)
    if drawn is None:
        return None
    png = frontier_png(**drawn)
    if png is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
