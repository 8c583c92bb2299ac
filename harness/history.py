"""Baselines over time: every accepted release of a suite, read from git, and its trend.

``baselines/<suite>.json`` is the current accepted state; each commit that changed it is a
release. :func:`suite_history` reads them with ``git log --follow`` (oldest first; a renamed
baseline keeps its history) and ``git show <commit>:<path>``, adds runs from saved JSON
reports (which carry latency, which a baseline never stores) and computes the trend of every
scorecard figure: the least-squares slope per release (``scipy.stats.linregress`` over the
release index) and the change since the first release.

git is run as a subprocess. What cannot give a history is a :class:`HistoryError` (CLI exit 2,
one line saying what to do): git missing, not a repository, a shallow clone (CI checkouts are
shallow by default: ``fetch-depth: 0``), or a baseline path without committed history.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, SpecError
from harness.report.numbers import fmt, signed
from harness.spec_types import RubricSpec, SuiteSpec

#: What to do when the history is cut off (GitHub's checkout fetches one commit by default).
FULL_HISTORY = ("fetch the whole history (actions/checkout with `fetch-depth: 0`, "
                "or `git fetch --unshallow`)")


class HistoryError(HarnessError):
    """No history can be read: no git, not a repository, a shallow clone, no commits."""


# --------------------------------------------------------------------------- git

def git(args: Sequence[str], cwd: Path) -> bytes:
    """stdout of ``git <args>`` run in ``cwd``; :class:`HistoryError` with git's first line
    of stderr when it fails, or when git is not installed."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise HistoryError("git is not installed or not on PATH: the baseline's history is "
                           "read with git") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HistoryError(f"git {' '.join(args[:2])} failed: {err[0] if err else proc.returncode}")
    return proc.stdout


def repository_root(path: Path) -> Path:
    """The top folder of the git work tree holding ``path``; :class:`HistoryError` when
    there is none or the clone is shallow."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        top = git(["rev-parse", "--show-toplevel"], folder).decode().strip()
    except HistoryError as exc:
        if "git is not installed" in str(exc):
            raise
        raise HistoryError(f"{folder} is not inside a git repository: the history of a baseline "
                           f"is its git log — run in a clone of the repository and {FULL_HISTORY}"
                           ) from None
    if git(["rev-parse", "--is-shallow-repository"], Path(top)).decode().strip() == "true":
        raise HistoryError(f"shallow clone: the baseline's history is cut off — {FULL_HISTORY}")
    return Path(top)


@dataclass(frozen=True)
class Revision:
    """One commit that changed a file: its sha, committer date and the file's path then."""

    commit: str
    date: str  # ISO 8601 committer date
    path: str  # relative to the repository root, as it was at that commit


def file_revisions(path: Path) -> tuple[Path, list[Revision]]:
    """(repository root, commits that changed ``path``, oldest first), following renames.

    A commit that deleted the file is left out (there is nothing to read at it).
    """
    top = repository_root(path)
    try:
        rel = path.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise HistoryError(f"{path} is outside the git repository at {top}") from None
    no_history = HistoryError(f"{rel} has no committed history: commit it (each accepted "
                              f"baseline update is one release), or, in CI, {FULL_HISTORY}")
    try:
        git(["rev-parse", "--verify", "--quiet", "HEAD"], top)
    except HistoryError:
        raise no_history from None  # a repository without any commit yet
    out = git(["log", "--follow", "--format=%x00%H%x09%cI", "--name-status", "--", rel], top)
    revisions: list[Revision] = []
    current = rel
    for chunk in out.decode("utf-8", "replace").split("\x00")[1:]:
        lines = [ln for ln in chunk.splitlines() if ln.strip()]
        commit, date = lines[0].split("\t")
        here, deleted = current, False
        for status in lines[1:]:
            parts = status.split("\t")
            if parts[0].startswith(("R", "C")) and len(parts) == 3:
                here, current = parts[2], parts[1]  # older commits know it by its old name
            elif parts[0] == "D":
                deleted = True
            elif len(parts) >= 2:
                here = parts[-1]
        if not deleted:
            revisions.append(Revision(commit=commit, date=date, path=here))
    revisions.reverse()
    if not revisions:
        raise no_history
    return top, revisions


def show(top: Path, commit: str, path: str) -> bytes:
    """The bytes of ``path`` (relative to the repository root) at ``commit``."""
    return git(["show", f"{commit}:{path}"], top)


# --------------------------------------------------------------------------- releases

@dataclass(frozen=True)
class Release:
    """One accepted state of a suite's student: a baseline commit or a saved report."""

    date: str
    source: str  # "git" or the report file
    commit: str | None
    suite_version: str | None
    rubric_version: str | None
    student_fingerprint: str | None
    teacher_fingerprint: str | None
    data_sha256: str | None
    metric: str | None  # the primary metric of the per-slice table
    quality_ratio: float | None = None
    size_reduction: float | None = None
    size_reduction_bytes: float | None = None
    latency_improvement: float | None = None
    training_efficiency: float | None = None
    slices: dict[str, float | None] = field(default_factory=dict)  # "overall" included
    slice_n: dict[str, int] = field(default_factory=dict)
    student_params: int | None = None

    @property
    def label(self) -> str:
        """How the release is named on a plot axis: its short commit or the report's name."""
        return self.commit[:7] if self.commit else Path(self.source).stem

    @property
    def overall(self) -> float | None:
        """The primary metric over every example."""
        return self.slices.get("overall")

    def to_dict(self) -> dict[str, Any]:
        """The release as ``distill history --format json`` lists it."""
        return {
            "date": self.date, "source": self.source, "commit": self.commit,
            "suite_version": self.suite_version, "rubric_version": self.rubric_version,
            "student_fingerprint": self.student_fingerprint,
            "teacher_fingerprint": self.teacher_fingerprint, "data_sha256": self.data_sha256,
            "metric": self.metric, "quality_ratio": self.quality_ratio,
            "size_reduction": self.size_reduction,
            "size_reduction_bytes": self.size_reduction_bytes,
            "latency_improvement": self.latency_improvement,
            "training_efficiency": self.training_efficiency,
            "student_params": self.student_params,
            "slices": {k: {"value": v, "n": self.slice_n.get(k)} for k, v in self.slices.items()},
        }


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def release_from_baseline(doc: Mapping[str, Any], *, date: str, commit: str | None,
                          source: str = "git") -> Release:
    """A release from a baseline document (older baselines without a scorecard give None
    for what they do not record; the quality ratio then comes from the overall slice)."""
    about = doc["about"]
    card = about.get("scorecard") or {}
    slices = about.get("slices") or {}
    overall = slices.get("overall") or {}
    quality = _num(card.get("quality_ratio"))
    if quality is None and _num(overall.get("teacher")) and _num(overall.get("student")) is not None:
        quality = float(overall["student"]) / float(overall["teacher"])
    size = card.get("size_reduction") or {}
    return Release(
        date=date, source=source, commit=commit,
        suite_version=str(about["suite"]["version"]),
        rubric_version=str(about["rubric"]["version"]),
        student_fingerprint=about["student"]["fingerprint"],
        teacher_fingerprint=about["teacher"]["fingerprint"],
        data_sha256=about.get("data_sha256"),
        metric=card.get("primary_metric") or overall.get("metric") or None,
        quality_ratio=quality, size_reduction=_num(size.get("params")),
        size_reduction_bytes=_num(size.get("bytes")),
        training_efficiency=_num(card.get("training_efficiency")),
        slices={str(k): _num(v.get("student")) for k, v in slices.items()},
        slice_n={str(k): int(v.get("n", 0)) for k, v in slices.items()},
        student_params=about["student"].get("params"),
    )


def release_from_report(suite: Mapping[str, Any], *, date: str, source: str) -> Release:
    """A release from one ``suites[]`` entry of a saved JSON report (with its latency)."""
    econ = suite.get("economics") or {}
    metrics = dict(econ.get("metrics") or {})
    timing = econ.get("timing")
    if isinstance(timing, Mapping):
        metrics.update(timing.get("metrics") or {})
        if "latency_improvement" not in metrics and _num(timing.get("latency_improvement")):
            metrics["latency_improvement"] = timing["latency_improvement"]
    rows = suite.get("slices") or []
    quality = _num(econ.get("quality_retained"))
    overall = next((r for r in rows if r.get("slice") == "overall"), None)
    if quality is None and overall is not None and _num(overall.get("teacher")):
        quality = float(overall["student"]) / float(overall["teacher"])
    rubric = suite.get("rubric") or {}
    return Release(
        date=date, source=source, commit=None,
        suite_version=str(suite.get("version")), rubric_version=str(rubric.get("version")),
        student_fingerprint=(suite.get("student") or {}).get("fingerprint"),
        teacher_fingerprint=(suite.get("teacher") or {}).get("fingerprint"),
        data_sha256=suite.get("data_sha256"),
        metric=rows[0].get("metric") if rows else None,
        quality_ratio=quality,
        size_reduction=_num(metrics.get("size_reduction", econ.get("size_reduction"))),
        size_reduction_bytes=_num(metrics.get("size_reduction_bytes")),
        latency_improvement=_num(metrics.get("latency_improvement")),
        training_efficiency=_num(metrics.get("quality_retained_per_gpu_hour")),
        slices={str(r["slice"]): _num(r.get("student")) for r in rows},
        slice_n={str(r["slice"]): int(r.get("n", 0)) for r in rows},
        student_params=(suite.get("student") or {}).get("params"),
    )


def git_releases(baseline_path: Path, *, limit: int | None = None,
                 notes: list[str] | None = None) -> list[Release]:
    """Every committed state of a baseline file, oldest first (the last ``limit`` only, and
    the first, when ``limit`` is given). A revision whose file cannot be read is skipped with
    a line in ``notes``."""
    from harness.baseline import parse_baseline
    from harness.errors import BaselineError

    top, revisions = file_revisions(baseline_path)
    if limit is not None and len(revisions) > limit + 1:
        revisions = [revisions[0], *revisions[-limit:]]
    releases = []
    for rev in revisions:
        shown = f"{rev.commit[:7]}:{rev.path}"
        try:
            doc = parse_baseline(show(top, rev.commit, rev.path), shown)
        except BaselineError as exc:
            if notes is not None:
                notes.append(f"skipped {shown}: {exc.detail}")
            continue
        releases.append(release_from_baseline(doc, date=rev.date, commit=rev.commit))
    return releases


def _mtime(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)
    return stamp.replace(microsecond=0).isoformat()


def report_releases(files: Sequence[Path], suite: str) -> list[Release]:
    """The runs of ``suite`` in saved JSON reports, dated by each file's modification time."""
    from harness.paths import display_path
    from harness.report import load_report

    out: list[Release] = []
    for f in files:
        doc = load_report(Path(f))
        entries = [s for s in doc.get("suites") or [] if s.get("name") == suite]
        if not entries:
            names = ", ".join(str(s.get("name")) for s in doc.get("suites") or []) or "none"
            raise SpecError(f"no run of suite {suite!r} in this report (its suites: {names})",
                            file=display_path(f), field="suites")
        out.extend(release_from_report(s, date=_mtime(Path(f)), source=display_path(f))
                   for s in entries)
    return out


def merge_reports(releases: list[Release], reports: Sequence[Release]) -> list[Release]:
    """Fold report runs into the release list.

    A report of a student that a release already records (same student fingerprint and data)
    fills in what the baseline does not store (latency); any other report is a release of its
    own, placed after the last release that is not newer than it.
    """
    out = list(releases)
    for rep in reports:
        match = next((i for i in range(len(out) - 1, -1, -1)
                      if out[i].student_fingerprint == rep.student_fingerprint
                      and out[i].data_sha256 == rep.data_sha256), None)
        if match is not None:
            base = out[match]
            out[match] = replace(base, latency_improvement=(
                base.latency_improvement if base.latency_improvement is not None
                else rep.latency_improvement))
            continue
        at = len(out)
        while at > 0 and _when(out[at - 1].date) > _when(rep.date):
            at -= 1
        out.insert(at, rep)
    return out


def _when(date: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(date)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------- trend

@dataclass(frozen=True)
class Trend:
    """How one figure moved over the releases that record it."""

    figure: str
    first: float | None
    last: float | None
    change: float | None  # last − first
    slope: float | None  # least-squares slope per release (None with fewer than 2 values)
    releases: int  # how many releases record the figure

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "first": self.first, "last": self.last,
                "change": self.change, "slope": self.slope, "releases": self.releases}


#: The scorecard figures of a release, in the order they are shown.
FIGURES: dict[str, Callable[[Release], float | None]] = {
    "quality_ratio": lambda r: r.quality_ratio,
    "size_reduction": lambda r: r.size_reduction,
    "latency_improvement": lambda r: r.latency_improvement,
    "training_efficiency": lambda r: r.training_efficiency,
}


def slice_names(releases: Sequence[Release]) -> list[str]:
    """Every slice any release records: ``overall`` first, then in order of appearance."""
    names = ["overall"]
    for r in reversed(releases):
        names += [k for k in r.slices if k not in names]
    return names


def figures(releases: Sequence[Release]) -> dict[str, list[float | None]]:
    """Each figure's value per release (None where a release does not record it): the
    scorecard figures, then the primary metric per slice (``<metric>[<slice>]``)."""
    metric = next((r.metric for r in reversed(releases) if r.metric), "metric")
    out = {name: [get(r) for r in releases] for name, get in FIGURES.items()}
    for s in slice_names(releases):
        out[f"{metric}[{s}]"] = [r.slices.get(s) for r in releases]
    return out


def trend(name: str, values: Sequence[float | None]) -> Trend:
    """The trend of one figure: x is the release index, so the slope is per release."""
    from scipy import stats

    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return Trend(name, None, None, None, None, 0)
    first, last = points[0][1], points[-1][1]
    slope = None
    if len(points) >= 2:
        fit = stats.linregress([p[0] for p in points], [p[1] for p in points])
        slope = float(fit.slope)
    return Trend(name, first, last, last - first, slope, len(points))


@dataclass
class History:
    """What ``distill history`` shows for one suite."""

    suite: str
    baseline: str
    releases: list[Release]
    notes: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        """The primary metric of the latest release that names one."""
        return next((r.metric for r in reversed(self.releases) if r.metric), "metric")

    def trends(self) -> list[Trend]:
        """The trend of every figure that at least one release records."""
        return [trend(k, v) for k, v in figures(self.releases).items()
                if any(x is not None for x in v)]

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "baseline": self.baseline, "metric": self.metric,
                "releases": [r.to_dict() for r in self.releases],
                "trend": [t.to_dict() for t in self.trends()], "notes": list(self.notes)}


def suite_history(spec: SuiteSpec, reports: Sequence[Path] = ()) -> History:
    """The releases of a suite's current baseline (git) and of saved reports, oldest first."""
    notes: list[str] = []
    releases = git_releases(spec.baseline_path, notes=notes)
    if reports:
        releases = merge_reports(releases, report_releases(reports, spec.name))
    try:
        shown = spec.baseline_path.resolve().relative_to(spec.root.resolve()).as_posix()
    except ValueError:
        shown = str(spec.baseline_path)
    return History(suite=spec.name, baseline=shown, releases=releases, notes=notes)


def trend_summary(baseline_path: Path, *, last: int = 5) -> dict[str, Any] | None:
    """For the Markdown "Trend" section: the quality ratio of the last ``last`` releases and
    its change since the first (launch) release; None when the baseline has no readable
    history (no git, a shallow clone, uncommitted) — a report never fails for want of one."""
    try:
        releases = git_releases(baseline_path, limit=last)
    except HistoryError:
        return None
    if not releases:
        return None
    launch, recent = releases[0], releases[-last:]
    values = [r.quality_ratio for r in recent]
    change = (recent[-1].quality_ratio - launch.quality_ratio
              if recent[-1].quality_ratio is not None and launch.quality_ratio is not None
              else None)
    return {"launch": {"commit": launch.commit, "date": launch.date,
                       "quality_ratio": launch.quality_ratio},
            "releases": [{"commit": r.commit, "date": r.date, "quality_ratio": v,
                          "student_fingerprint": r.student_fingerprint}
                         for r, v in zip(recent, values, strict=True)],
            "quality_ratio_change": change}


# --------------------------------------------------------------------------- rendering

def release_rows(hist: History) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the release table (one row per release, oldest first)."""
    slices = slice_names(hist.releases)
    headers = ["date", "commit", "suite", "rubric", "student", "quality", "size red.",
               "latency x", "q/GPU-h", *[f"{hist.metric} {s}" for s in slices]]
    rows = []
    for r in hist.releases:
        rows.append([r.date[:10], r.commit[:7] if r.commit else Path(r.source).name,
                     r.suite_version or "-", r.rubric_version or "-",
                     (r.student_fingerprint or "-")[:8], fmt(r.quality_ratio),
                     fmt(r.size_reduction), fmt(r.latency_improvement, 2),
                     fmt(r.training_efficiency), *[fmt(r.slices.get(s)) for s in slices]])
    return headers, rows


def trend_rows(hist: History) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the trend table (one row per figure)."""
    headers = ["figure", "first", "last", "change", "slope/release", "releases"]
    rows = [[t.figure, fmt(t.first, 4), fmt(t.last, 4), signed(t.change, 4), signed(t.slope, 4),
             str(t.releases)] for t in hist.trends()]
    return headers, rows


def render(hist: History, fmt: str) -> str:
    """``table`` (tabulate, for a terminal), ``markdown`` (GitHub) or ``json``."""
    if fmt == "json":
        return json.dumps(hist.to_dict(), indent=2, sort_keys=True) + "\n"
    from tabulate import tabulate

    tablefmt = "github" if fmt == "markdown" else "simple"
    head, rows = release_rows(hist)
    t_head, t_rows = trend_rows(hist)
    title = (f"### {hist.suite}: {len(hist.releases)} releases of {hist.baseline}"
             if fmt == "markdown" else
             f"distill history {hist.suite}: {len(hist.releases)} releases of {hist.baseline}")
    parts = [title, "", tabulate(rows, headers=head, tablefmt=tablefmt, disable_numparse=True),
             "", "trend (least-squares slope per release; change = last − first):" if fmt != "markdown"
             else "**Trend** (least-squares slope per release; change = last − first)", "",
             tabulate(t_rows, headers=t_head, tablefmt=tablefmt, disable_numparse=True)]
    parts += [f"note: {n}" for n in hist.notes]
    return "\n".join(parts) + "\n"


def thresholds(rubric: RubricSpec, metric: str) -> dict[str, list[tuple[str, float]]]:
    """Rubric thresholds per plotted figure: (label, value) pairs for horizontal lines."""
    out: dict[str, list[tuple[str, float]]] = {}

    def add(figure: str, c: Any) -> None:
        for bound in ("min", "max"):
            value = getattr(c, bound)
            if value is not None:
                out.setdefault(figure, []).append((f"{c.name} {bound} {value:g}", float(value)))

    for c in rubric.criteria:
        if c.compare == "teacher_ratio" and c.metric == metric and c.scope in ("overall", "all"):
            add("quality_ratio", c)
        elif c.compare == "value" and c.metric == "size_reduction":
            add("size_reduction", c)
        elif c.compare == "value" and c.metric == "latency_improvement":
            add("latency_improvement", c)
        elif c.compare == "value" and c.metric == "quality_retained_per_gpu_hour":
            add("training_efficiency", c)
        elif c.compare == "value" and c.metric == metric and c.scope in ("overall", "all"):
            add(f"{metric}[overall]", c)
    return out


def plot(hist: History, out: Path, rubric: RubricSpec | None = None) -> Path:
    """A PNG with one panel per scorecard figure that any release records (the primary
    metric's panel shows every slice), releases on the x axis, the rubric's thresholds drawn
    as dashed lines. Written atomically; returns ``out``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.fileio import atomic_write

    values = figures(hist.releases)
    metric = hist.metric
    panels = [k for k in FIGURES if any(v is not None for v in values[k])]
    slice_keys = [k for k in values if k.startswith(f"{metric}[")]
    lines = thresholds(rubric, metric) if rubric is not None else {}
    n_panels = len(panels) + 1
    fig, axes = plt.subplots(n_panels, 1, figsize=(8, 2.4 * n_panels), sharex=True,
                             squeeze=False)
    x = list(range(len(hist.releases)))
    titles = {"quality_ratio": f"quality ratio (student / teacher {metric})",
              "size_reduction": "size reduction (1 − student/teacher params)",
              "latency_improvement": "latency improvement (teacher p50 / student p50)",
              "training_efficiency": "quality retained per GPU-hour"}
    for ax, key in zip(axes[:, 0], [*panels, "slices"], strict=True):
        if key == "slices":
            for k in slice_keys:
                pts = [(i, v) for i, v in zip(x, values[k], strict=True) if v is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o",
                            linewidth=2.5 if k.endswith("[overall]") else 1.2,
                            label=k[len(metric) + 1:-1])
            for label, value in lines.get(f"{metric}[overall]", []):
                ax.axhline(value, linestyle="--", color="grey", linewidth=1)
                ax.annotate(label, (0, value), fontsize=7, color="grey")
            ax.set_title(f"student {metric} per slice", fontsize=9)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        else:
            pts = [(i, v) for i, v in zip(x, values[key], strict=True) if v is not None]
            ax.plot(*zip(*pts, strict=True), marker="o")
            for label, value in lines.get(key, []):
                ax.axhline(value, linestyle="--", color="red", linewidth=1)
                ax.annotate(label, (0, value), fontsize=7, color="red")
            ax.set_title(titles[key], fontsize=9)
        ax.grid(True, alpha=0.3)
    last = axes[-1, 0]
    last.set_xticks(x)
    last.set_xticklabels([f"{r.label}\n{r.date[:10]}" for r in hist.releases], fontsize=7)
    last.set_xlabel("release (oldest first)")
    fig.suptitle(f"{hist.suite}: {len(hist.releases)} releases", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write(Path(out), buf.getvalue())
    return Path(out)


# --------------------------------------------------------------------------- suites by name

def resolve_suite(arg: str, cwd: Path | None = None) -> Path:
    """A suite file from a command-line argument: a path, or a suite name looked up as
    ``suites/<name>.yaml`` / ``.yml`` / ``.json`` / ``suites/<name>/suite.yaml`` under the
    repository root, then by the ``name:`` of every file in ``suites/``."""
    from harness.paths import find_root
    from harness.spec import read_document, suite_files

    here = (cwd or Path.cwd())
    path = Path(arg)
    if path.is_file():
        return path
    root = find_root(here)
    folder = root / "suites"
    for cand in (folder / f"{arg}.yaml", folder / f"{arg}.yml", folder / f"{arg}.json",
                 folder / arg / "suite.yaml", folder / arg / "suite.yml"):
        if cand.is_file():
            return cand
    if folder.is_dir() and "/" not in arg:
        for f in suite_files(folder):
            try:
                doc, _ = read_document(f)
            except SpecError:
                continue
            if isinstance(doc, Mapping) and doc.get("name") == arg:
                return f
    raise SpecError(f"no suite file or suite named {arg!r} (looked in {folder})", file=arg)
