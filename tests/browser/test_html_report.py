"""The HTML report in a real browser: Debian's Chromium driven by Playwright.

A generation suite on prediction files whose student fails the German slice with hostile answers
(markup that would run script if it were ever parsed) is gated by ``distill run --html``; the
page is opened from disk. Checked: no request other than ``file:`` / ``data:``, no console error,
the hostile answers show as text and run nothing (also after every section is expanded and every
filter used), the failing check's examples show the teacher's and the student's answers, and the
page reads with JavaScript off.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("DISTILL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
#: Answers and inputs that would run script if the page ever parsed them as markup.
HOSTILE = (
    "<script>window.__owned = (window.__owned || 0) + 1</script>",
    '"><img src=x onerror="window.__owned = 1">',
    "</td></tr></table><svg onload=\"window.__owned = 1\"></svg>",
    "</script><script>window.__owned = 1</script>",
    "{{ 7 * 7 }} <b onmouseover=\"window.__owned = 1\">bold</b>",
)
SUITE = """\
schema_version: 1
name: qa
version: "1"
task: generation
data:
  path: ../data/eval.jsonl
  prompt: "Q: {question}\\nA:"
  label: answer
  features: [lang, topic]
teacher: {type: predictions, path: ../data/teacher.jsonl}
student: {type: predictions, path: ../data/student.jsonl}
rubric: ../rubrics/qa.yaml
slices:
  - by: lang
    owner: "@org/<b>de-team</b>"
    playbook: docs/playbooks/de.md
discovery: {features: [lang, topic], max_predicates: 2, min_support: 30}
"""
RUBRIC = """\
schema_version: 1
id: qa-gate
version: 1
defaults: {alpha: 0.05, min_support: 30}
criteria:
  - {name: em_ratio, metric: exact_match, compare: teacher_ratio, min: 0.9, scope: overall}
  - {name: em_gap, metric: exact_match, compare: teacher_delta, min: -0.1, scope: slices}
  - {name: pockets, metric: exact_match, compare: teacher_delta, min: -0.1, scope: discovered}
  - {name: chrf, metric: chrf, compare: teacher_delta, min: -10, scope: slices}
"""
FAILING = "qa::em_gap[lang=de]"


def _browser_or_skip() -> tuple[Any, str]:
    """Playwright's entry point and the Chromium executable, or a skip that says what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser can be installed here: Playwright is missing "
                    "(pip install playwright; the browser is Debian's chromium, never a download)")
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no browser can be installed here: {CHROMIUM} is missing "
                    "(apt-get install -y chromium; .ci/run installs it)")
    return sync_playwright, executable


def _write_repo(root: Path) -> None:
    (root / "pyproject.toml").write_text("", "utf-8")
    for sub in ("data", "suites", "rubrics"):
        (root / sub).mkdir()
    rows, teacher, student = [], [], []
    for i in range(240):
        lang = "de" if i % 2 else "en"
        topic = ("dates", "places", "people")[(i // 2) % 3]
        answer = f"{topic}-{i:03d} answer"
        hostile = lang == "de" and i % 6 in (1, 3)
        teacher_wrong = i % 12 == 5  # German too: there the student is better than the teacher
        question = f"which {topic} is {i}?" + (f" {HOSTILE[i % len(HOSTILE)]}" if hostile else "")
        rows.append({"id": f"q{i:03d}", "question": question, "answer": answer, "lang": lang,
                     "topic": topic})
        teacher.append({"id": f"q{i:03d}", "output": "no idea" if teacher_wrong else answer})
        student.append({"id": f"q{i:03d}",
                        "output": f"{answer} {HOSTILE[i % len(HOSTILE)]}" if hostile else answer})
    for name, lines in (("eval", rows), ("teacher", teacher), ("student", student)):
        (root / "data" / f"{name}.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    (root / "suites" / "qa.yaml").write_text(SUITE, "utf-8")
    (root / "rubrics" / "qa.yaml").write_text(RUBRIC, "utf-8")


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page ``distill run --html`` writes for the hostile suite (the gate fails: exit 1)."""
    root = tmp_path_factory.mktemp("hostile")
    _write_repo(root)
    run = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "suites/qa.yaml", "--html", "page.html",
         "--report", "report.json", "--report-examples", "120", "--no-cache", "--quiet"],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, **OFFLINE, "GITHUB_STEP_SUMMARY": "", "GITHUB_ACTIONS": ""})
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads((root / "report.json").read_text("utf-8"))
    failing = next(c for c in report["suites"][0]["checks"] if c["id"] == FAILING)
    assert failing["verdict"] == "fail"
    return root / "page.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright, executable = _browser_or_skip()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page and everything it asked for, said and ran."""

    def __init__(self, browser: Any, path: Path, *, javascript: bool = True):
        self.context = browser.new_context(java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any, page_path: Path) -> Iterator[Watched]:
    w = Watched(browser, page_path)
    yield w
    w.close()


def _use_everything(page: Any) -> None:
    """Expand every section, use every filter and sort every sortable column once."""
    page.click("#expand-all")
    assert page.evaluate("[...document.querySelectorAll('details')].every(d => d.open)")
    page.check("#only-worse")
    page.uncheck("#only-worse")
    for select in page.query_selector_all("select.verdict-filter, select.owner-filter"):
        for value in select.eval_on_selector_all("option", "os => os.map(o => o.value)"):
            select.select_option(value)
        select.select_option("")
    for th in page.query_selector_all("table.sortable thead th")[:40]:
        th.click()


def test_no_request_leaves_the_page_and_nothing_logs_an_error(watched: Watched):
    _use_everything(watched.page)
    assert watched.requests, "the page itself was requested"
    assert [u for u in watched.requests if not u.startswith(("file:", "data:"))] == []
    assert watched.errors == []


def test_hostile_outputs_show_as_text_and_run_nothing(watched: Watched):
    page = watched.page
    _use_everything(page)
    assert page.evaluate("window.__owned") is None
    assert watched.dialogs == []
    assert page.evaluate("document.scripts.length") == 1
    injected = "img:not(.plot), svg:not(.ci):not(.trend), b"  # none of these is the page's own
    assert page.evaluate(f"document.querySelectorAll('{injected}').length") == 0
    article = page.locator("article.check", has=page.locator(f"code:text-is('{FAILING}')"))
    shown = "\n".join(article.locator("td.answer.student").all_inner_texts())
    inputs = "\n".join(article.locator("table.examples tbody td:nth-child(2)").all_inner_texts())
    for text in HOSTILE:
        assert text in shown, text
        assert text in inputs, text


def test_the_failing_check_shows_teacher_and_student_side_by_side(watched: Watched):
    page = watched.page
    article = page.locator("article.check", has=page.locator(f"code:text-is('{FAILING}')"))
    assert article.count() == 1
    assert "@org/<b>de-team</b>" in article.inner_text()
    assert "docs/playbooks/de.md" in article.inner_text()
    article.locator("details.examples > summary").first.click()
    rows = article.locator("table.examples tbody tr")
    assert rows.count() >= 10
    first = rows.nth(0)
    ex_id = first.locator("td").nth(0).inner_text().strip()
    i = int(ex_id[1:])
    topic = ("dates", "places", "people")[(i // 2) % 3]
    answer = f"{topic}-{i:03d} answer"
    assert first.locator("td.answer.teacher").inner_text().strip() == answer
    student = first.locator("td.answer.student")
    assert student.inner_text().strip() == f"{answer} {HOSTILE[i % len(HOSTILE)]}"
    assert student.locator("ins").count() >= 1  # what only the student said is marked
    assert first.get_attribute("data-worse") == "1"
    assert "exact_match: 1.000 → 0.000" in first.inner_text()


def test_only_where_the_student_is_worse(watched: Watched):
    page = watched.page
    page.click("#expand-all")
    rows = page.locator("table.examples tbody tr")
    better = page.locator("table.examples tbody tr[data-worse='0']")
    assert better.count() >= 1  # the German rows where the teacher was wrong
    page.check("#only-worse")
    assert all(not better.nth(k).is_visible() for k in range(better.count()))
    worse = page.locator("table.examples tbody tr[data-worse='1']")
    assert worse.count() >= 1 and worse.first.is_visible()
    page.uncheck("#only-worse")
    assert rows.first.is_visible()


def test_the_page_reads_with_javascript_off(browser: Any, page_path: Path):
    w = Watched(browser, page_path, javascript=False)
    try:
        page = w.page
        assert page.evaluate  # the page loaded; no script of it ran
        assert page.locator("h1").inner_text().startswith("distill gate:")
        assert "FAIL" in page.locator("h1").inner_text()
        assert not page.locator("#expand-all").is_visible()  # controls need the script
        article = page.locator("article.check", has=page.locator(f"code:text-is('{FAILING}')"))
        assert article.is_visible()
        article.locator("details.examples > summary").first.click()  # native, no script
        assert article.locator("td.answer.teacher").first.is_visible()
        assert page.locator("table").count() >= 5
        assert [u for u in w.requests if not u.startswith(("file:", "data:"))] == []
        assert w.errors == []
    finally:
        w.close()


def test_the_pytest_flags_write_the_page_with_the_examples_capped(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    _write_repo(pytester.path)
    result = pytester.runpytest("--distill-suite", "suites/qa.yaml", "--distill-html", "p.html",
                                "--distill-report", "r.json", "--distill-report-examples", "4",
                                "--distill-no-cache")
    assert result.ret == 1
    report = json.loads((pytester.path / "r.json").read_text("utf-8"))
    examples = report["suites"][0]["examples"]
    for check in report["suites"][0]["checks"]:
        assert sum(check["id"] in e["checks"] for e in examples.values()) <= 4
    assert sum(FAILING in e["checks"] for e in examples.values()) == 4
    page = (pytester.path / "p.html").read_text("utf-8")
    assert FAILING in page and "&lt;script&gt;" in page
