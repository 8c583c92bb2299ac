"""The HTML renderer and the examples it shows: escaping, CSP hashes, CIs to scale, the frontier."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import Dataset
from harness.examples import ExampleSource, report_examples
from harness.gate import GateInputs
from harness.models.base import Predictions
from harness.outputs import EvalContext, LabelOutputs
from harness.report.html import axis_of, ci_svg, diff_html, render_html
from harness.results import Check, Pocket, Predicate

SCRIPT = '<script>alert("owned")</script>'
IMG = '"><img src=x onerror=alert(1)>'


def hostile_report() -> dict:
    """A failing report whose every string a user controls is hostile markup."""
    example = {"input": f"review {SCRIPT}", "reference": "fresh", "teacher": f"fresh {IMG}",
               "student": f"rotten {SCRIPT}", "source": "eval", "student_worse": True,
               "outcomes": {"accuracy": {"teacher": 1.0, "student": 0.0}},
               "checks": [f"s::slice_gap[{IMG}]"], "pockets": [IMG]}
    check = {"id": f"s::slice_gap[{IMG}]", "criterion": "slice_gap", "scope": "slices",
             "slice": IMG, "metric": "accuracy", "compare": "teacher_delta", "value": -0.3,
             "ci": [-0.4, -0.2], "n": 80, "threshold": {"min": -0.05}, "p_value": 0.001,
             "q_value": 0.002, "verdict": "fail", "message": f"bad {SCRIPT}",
             "examples": ["x-1"], "owner": f"@team{IMG}", "playbook": f"docs/{SCRIPT}.md"}
    passing = dict(check, id="s::slice_gap[overall]", slice="overall", value=0.01, ci=[-0.02, 0.04],
                   verdict="pass", owner="@ok", examples=[])
    return {
        "schema_version": 1, "harness_version": "0.1.0", "verdict": "fail", "strict": False,
        "suites": [{
            "name": "s", "version": "1", "task": "classification", "n": 100, "data_sha256": "ab",
            "rubric": {"id": f"r{SCRIPT}", "version": 1}, "verdict": "fail",
            "teacher": {"fingerprint": "t" * 64, "params": 10, "bytes": 40, "type": "predictions"},
            "student": {"fingerprint": "s" * 64, "params": 5, "bytes": 20, "type": "predictions"},
            "checks": [check, passing],
            "slices": [{"slice": IMG, "n": 80, "metric": "accuracy", "teacher": 0.9, "student": 0.6,
                        "delta": -0.3, "ci": [-0.4, -0.2], "verdict": "fail"}],
            "pockets": [{"slice": IMG, "predicates": [{"feature": "f", "op": "eq", "value": IMG}],
                         "n": 40, "teacher": 0.9, "student": 0.5, "delta": -0.4, "p_value": 0.01,
                         "q_value": 0.02, "confirmed": True, "examples": ["x-1"],
                         "metric": "accuracy"}],
            "coverage_gaps": [{"kind": "support", "slice": IMG, "n": 3, "needed": 50,
                               "detail": SCRIPT}],
            "teacher_audit": {"accuracy": 0.9, "suspect_ids": [SCRIPT]},
            "economics": {}, "notes": [SCRIPT],
            "examples": {"x-1": example},
        }],
    }


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_hostile_text_is_escaped_everywhere():
    page = render_html(hostile_report())
    assert "<img" not in page
    assert page.count("<script>") == 1  # the page's own script, nothing else
    assert "alert(" not in page.split("<script>")[1]
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_csp_allows_only_the_hashed_style_and_script_and_data_images():
    page = render_html(hostile_report())
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1).replace("&#39;", "'")
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script is not None and style is not None
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert f"script-src '{_hash(script.group(1))}'" in policy
    assert f"style-src '{_hash(style.group(1))}'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    tags = Tags()
    tags.feed(page)
    assert [t for t, _ in tags.seen].count("script") == 1
    assert "img" not in [t for t, _ in tags.seen]
    attrs = [(k, v or "") for _, a in tags.seen for k, v in a]
    assert not [k for k, _ in attrs if k.startswith("on")]  # no inline event handler anywhere
    assert not [v for k, v in attrs if k == "src" and not v.startswith("data:")]
    assert not [v for k, v in attrs if k == "href" and not v.startswith(("#", "data:"))]


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def test_failing_check_lists_its_examples_side_by_side():
    page = render_html(hostile_report())
    article = page.split('<article class="check" data-verdict="fail"')[1].split("</article>")[0]
    assert "x-1" in article
    assert 'class="answer teacher">fresh &#34;&gt;&lt;img' in article
    assert "<del>fresh</del><ins>rotten</ins>" in article.replace("\n", "")
    assert 'data-worse="1"' in article
    assert "accuracy: 1.000 → 0.000" in article
    assert "owner <strong>@team&#34;&gt;&lt;img" in article


def test_tables_are_real_tables_and_controls_wait_for_the_script():
    page = render_html(hostile_report())
    assert page.count("<table") >= 5
    for control in re.findall(r'<div class="controls js-only"[^>]*>', page):
        assert "hidden" in control


def test_diff_marks_words_and_escapes_them():
    assert str(diff_html("the cat sat", "the dog sat")) == "the <del>cat</del><ins>dog</ins> sat"
    marked = str(diff_html("a", "<b>"))
    assert "<b>" not in marked and "&lt;b&gt;" in marked
    assert str(diff_html("same <i>", "same <i>")) == "same &lt;i&gt;"


def test_long_texts_are_cut_on_the_page_with_a_note():
    report = hostile_report()
    report["suites"][0]["examples"]["x-1"]["input"] = "<i>" + "w " * 5000
    page = render_html(report)
    assert "… (6,003 more characters in the JSON report)" in page
    assert "&lt;i&gt;w w" in page


def test_ci_is_drawn_to_scale_against_its_threshold():
    svg = str(ci_svg([-0.4, -0.2], -0.3, {"min": -0.05}, (-0.5, 0.0), "fail"))
    lines = re.findall(r'<line x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)"', svg)
    # axis from x=4 to x=176 over [-0.5, 0]: -0.4 -> 38.4, -0.2 -> 107.2, -0.05 -> 158.8
    assert ("38.4", "107.2") in lines
    assert ("158.8", "158.8") in lines
    assert 'cx="72.8"' in svg
    assert axis_of([-0.4, -0.2, -0.05])[0] < -0.4 and axis_of([-0.4, -0.2, -0.05])[1] > -0.05


def test_judges_health_and_trend_appear_when_the_report_has_them():
    report = hostile_report()
    suite = report["suites"][0]
    suite["judges"] = {"helpful": {"mode": "pairwise", "n": 40, "win_rate": 0.41, "lc_win_rate": 0.44,
                                   "lc_ci": [0.38, 0.5], "consistency": 0.8, "first_preferred": 0.6,
                                   "longer_preferred": 0.7, "invalid_rate": 0.0,
                                   "self_preference": True, "requests": 80, "cached": 0,
                                   "usd": 0.12, "usd_this_run": 0.12,
                                   "verdicts": {"x-1": ["student_first: B", f"teacher_first: {SCRIPT}"]}}}
    suite["baseline"] = {"trend": {"releases": [{"commit": "abcdef123", "date": "2026-01-02",
                                                 "quality_ratio": 0.97},
                                                {"commit": "bcdef0123", "date": "2026-02-02",
                                                 "quality_ratio": 0.96}],
                                   "quality_ratio_change": -0.01}}
    page = render_html(report)
    assert "Judges' health" in page and "yes: the judge is the teacher" in page
    assert "Trend" in page and "abcdef1" in page and "-0.010 since launch" in page
    assert 'aria-label="quality_ratio by release: abcdef1 0.970, bcdef01 0.960"' in page
    row = page.split('<tr data-worse="1">')[1].split("</tr>")[0]
    assert "judge helpful: student_first: B; teacher_first: &lt;script&gt;" in row


def test_frontier_is_an_inline_png_with_teacher_and_threshold():
    pytest.importorskip("matplotlib")
    from harness.report.frontier_plot import report_frontier

    report = hostile_report()
    suite = report["suites"][0]
    suite["checks"].append(dict(suite["checks"][1], id="s::quality_ratio[overall]",
                                criterion="quality_ratio", compare="teacher_ratio",
                                threshold={"min": 0.9}))
    timing = {"per_batch": [{"teacher_p50": 0.05, "student_p50": 0.02}]}
    suite["economics"] = {"candidates": [
        {"name": "l2", "params": 5, "quality_ratio": 0.93, "passes": True, "timing": timing},
        {"name": "l1", "params": 3, "quality_ratio": 0.85, "passes": False,
         "timing": {"latency": {"per_batch": [{"teacher_p50": 0.05, "student_p50": 0.01}]}}}],
        "frontier": ["l1", "l2"], "recommended": "l2"}
    drawn = report_frontier(suite)
    assert drawn is not None
    assert drawn["teacher_latency"] == 0.05 and drawn["threshold"] == 0.9
    assert [c.latency for c in drawn["candidates"]] == [0.02, 0.01]
    page = render_html(report)
    assert '<img class="plot" src="data:image/png;base64,' in page


def _sources() -> ExampleSource:
    ids = tuple(f"e{i}" for i in range(8))
    gold = ("a", "a", "a", "a", "b", "b", "b", "b")
    teacher = ("a", "a", "a", "b", "b", "b", "b", "b")
    student = ("b", "b", "a", "a", "b", "a", "b", "b")
    data = Dataset(path=Path("eval.jsonl"), sha256="x", ids=ids,
                   inputs=tuple(f"<i>text {i}</i>" for i in range(8)), labels=gold,
                   features={"lang": np.array(["de"] * 4 + ["en"] * 4, dtype=object)})

    def codes(labels: tuple[str, ...]) -> np.ndarray:
        return np.array([0 if x == "a" else 1 for x in labels])

    ctx = EvalContext(labels=("a", "b"), gold=codes(gold), teacher=LabelOutputs(labels=codes(teacher)))
    inputs = GateInputs(ctx=ctx, student=LabelOutputs(labels=codes(student)),
                        slices={"overall": np.arange(8), "lang=de": np.arange(4)}, ids=ids,
                        features=data.features)
    return ExampleSource("eval", data, inputs, Predictions(ids=ids, labels=teacher),
                         Predictions(ids=ids, labels=student))


def _check(slice_name: str, verdict: str, examples: tuple[str, ...] = ()) -> Check:
    return Check(id=f"s::gap[{slice_name}]", criterion="gap", scope="slices", slice=slice_name,
                 metric="accuracy", compare="teacher_delta", value=-0.5, ci=(-0.9, -0.1), n=4,
                 threshold={"min": -0.05}, verdict=verdict, message="", examples=examples)


def test_examples_of_a_failing_check_worse_first_and_capped():
    rows = _sources()
    out = report_examples([_check("lang=de", "fail"), _check("overall", "pass")], [],
                          eval_rows=rows, limit=3)
    # lang=de: e0, e1 student wrong where the teacher was right; e3 differs (teacher wrong)
    assert list(out) == ["e0", "e1", "e3"]
    assert out["e0"] == {"input": "<i>text 0</i>", "reference": "a", "teacher": "a", "student": "b",
                         "outcomes": {"accuracy": {"teacher": 1.0, "student": 0.0}},
                         "source": "eval", "student_worse": True,
                         "checks": ["s::gap[lang=de]"], "pockets": []}
    assert out["e3"]["student_worse"] is False
    assert report_examples([_check("lang=de", "fail")], [], eval_rows=rows, limit=0) == {}
    speed = dataclasses.replace(_check("overall", "warn"), metric="latency_improvement",
                                compare="value")
    assert report_examples([speed], [], eval_rows=rows, limit=3) == {}  # a suite-wide figure
    assert list(report_examples([_check("lang=de", "fail")], [], eval_rows=rows, limit=1)) == ["e0"]


def test_the_gate_s_own_ids_come_first_and_pockets_get_theirs():
    rows = _sources()
    pocket = Pocket(slice="lang=en", predicates=(Predicate("lang", "eq", "en"),), n=4, teacher=1.0,
                    student=0.75, delta=-0.25, p_value=0.1, q_value=0.1, confirmed=True,
                    ids=("e7",), criterion="pockets", metric="accuracy")
    out = report_examples([_check("lang=de", "inconclusive", ("e2",))], [pocket], eval_rows=rows,
                          limit=5)
    assert list(out)[:2] == ["e2", "e0"]
    assert out["e7"]["pockets"] == ["lang=en"] and out["e5"]["pockets"] == ["lang=en"]
    assert out["e5"]["student_worse"] is True


def test_distill_report_writes_the_page_and_exits_0_even_on_a_failing_gate(tmp_path, capsys):
    report = tmp_path / "r.json"
    doc = hostile_report()
    report.write_text(json.dumps(doc))
    out = tmp_path / "r.html"
    assert main(["report", str(report), "--format", "html", "-o", str(out)]) == 0
    assert out.read_text("utf-8") == render_html(copy.deepcopy(doc))
    assert "HTML report written" in capsys.readouterr().out


def test_traffic_checks_cite_traffic_rows_without_a_reference():
    rows = _sources()
    ids = ("t0", "t1", "t2")
    traffic = Dataset(path=Path("traffic.jsonl"), sha256="y", ids=ids, inputs=("u", "v", "w"),
                      labels=None)
    teacher, student = np.array([0, 1, 1]), np.array([1, 1, 0])
    ctx = EvalContext(labels=("a", "b"), gold=None, teacher=LabelOutputs(labels=teacher))
    inputs = GateInputs(ctx=ctx, student=LabelOutputs(labels=student), ids=ids,
                        slices={"traffic": np.arange(3)}, whole="traffic")
    source = ExampleSource("traffic", traffic, inputs, Predictions(ids=ids, labels=("a", "b", "b")),
                           Predictions(ids=ids, labels=("b", "b", "a")))
    check = Check(id="s::agree[traffic]", criterion="agree", scope="traffic", slice="traffic",
                  metric="agreement", compare="teacher_delta", value=-0.6, ci=(-0.9, -0.1), n=3,
                  threshold={"min": -0.2}, verdict="fail", message="")
    out = report_examples([check, _check("lang=de", "pass")], [], eval_rows=rows,
                          traffic_rows=source, limit=5)
    assert list(out) == ["t0", "t2"]
    assert out["t0"]["reference"] is None and out["t0"]["source"] == "traffic"
    assert out["t0"]["outcomes"] == {"agreement": {"teacher": 1.0, "student": 0.0}}


def test_frontier_figure_has_units_the_teacher_and_the_threshold():
    pytest.importorskip("matplotlib")
    from harness.economics.frontier import Candidate
    from harness.report.frontier_plot import frontier_figure

    cands = [Candidate("l2", 0.93, 0.020, 5.0, True), Candidate("l1", 0.85, 0.010, 3.0, False)]
    fig = frontier_figure(cands, ["l1", "l2"], "l2", teacher_latency=0.05, threshold=0.9)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "latency p50 per batch (ms)"
    assert [list(line.get_ydata()) for line in ax.lines if list(line.get_ydata()) == [0.9, 0.9]]
    points = [tuple(p) for col in ax.collections for p in col.get_offsets()]
    assert (50.0, 1.0) in points and (20.0, 0.93) in points
    assert "teacher" in [t.get_text() for t in ax.texts]
