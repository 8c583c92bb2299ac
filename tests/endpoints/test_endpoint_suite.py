"""A suite with an endpoint teacher, through the CLI and the pytest plugin: the run, its
reports, the dry run; the key in no file the run wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from endpoint_helpers import files_containing, write_suite
from fake_openai import SERVED_MODEL, answer_for, usage_for

import harness.cache  # noqa: F401 - imported once, before pytester's in-process runs
import harness.dryrun  # noqa: F401
import harness.models.openai_compat  # noqa: F401
import harness.runner  # noqa: F401
from harness.cli import main

KEY = "sk-suite-test-key-9f8e7d6c5b4a"
PROMPTS = [f"tell me about item {i}" for i in range(8)]


def _suite(root: Path, url: str, name: str = "endpoint", metadata: dict | None = None) -> Path:
    rows = [{"id": f"q{i}", "text": p, "reference": answer_for(p)} for i, p in enumerate(PROMPTS)]
    (root / "data").mkdir(parents=True, exist_ok=True)
    # The student: a predictions file that matches the teacher on 7 of 8 examples.
    student = [{"id": f"q{i}", "output": answer_for(p) if i else "wrong"}
               for i, p in enumerate(PROMPTS)]
    (root / "data" / "student.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in student), "utf-8")
    teacher = {"type": "openai", "base_url": url, "model": "fake-teacher", "api": "chat",
               "api_key_env": "SUITE_TEST_KEY", "max_connections": 4, "timeout_s": 5,
               "retries": 2, "generation": {"max_new_tokens": 12, "temperature": 0},
               "metadata": metadata or {"params": 7.0e9,
                                        "usd_per_million_tokens": {"input": 1.0, "output": 3.0}}}
    return write_suite(root, name, rows=rows, teacher=teacher,
                       student={"type": "predictions", "path": "../data/student.jsonl"},
                       criteria=[{"name": "fidelity", "metric": "teacher_match", "compare": "value",
                                  "min": 0.5, "scope": "overall", "decision": "point"}])


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUITE_TEST_KEY", KEY)


def test_distill_run_with_an_endpoint_teacher_writes_no_key(fake_openai, repo, capsys):
    server = fake_openai(api_key=KEY)
    suite = _suite(repo, server.base_url)
    code = main(["run", str(suite), "--report", "out/report.json", "--markdown", "out/report.md"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sum(server.requests.values()) == len(PROMPTS)
    doc = json.loads((repo / "out" / "report.json").read_text("utf-8"))
    (suite_doc,) = doc["suites"]
    teacher = suite_doc["teacher"]
    assert teacher["served"]["model"] == SERVED_MODEL
    assert teacher["usage"]["requests"] == len(PROMPTS)
    assert teacher["usage"]["input_tokens"] == sum(usage_for(p)[0] for p in PROMPTS)
    assert teacher["usage"]["output_tokens"] == sum(usage_for(p)[1] for p in PROMPTS)
    assert files_containing(repo, KEY) == []
    assert KEY not in captured.out + captured.err
    # Run again: every answer is cached, the server is asked nothing.
    assert main(["run", str(suite)]) == 0
    assert sum(server.requests.values()) == len(PROMPTS)


def test_distill_run_exits_2_with_one_line_when_the_server_is_gone(repo, capsys):
    from endpoint_helpers import free_port

    suite = _suite(repo, f"http://127.0.0.1:{free_port()}/v1")
    raw = suite.read_text("utf-8").replace("retries: 2", "retries: 0")
    suite.write_text(raw, "utf-8")
    assert main(["run", str(suite)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "8 of 8 examples have no answer after 0 retries" in err[0], err
    assert "Traceback" not in err[0] and KEY not in err[0]


def test_an_llm_teacher_labels_a_classification_suite(fake_openai, repo, capsys):
    """The common distillation: an endpoint teacher labels, a small classifier is the student.
    One teacher answer matches no label: invalid, wrong, counted — never a crash."""
    texts = [f"review number {i}" for i in range(8)]
    gold = ["fresh", "rotten"] * 4
    said = {t: ("Positive" if g == "fresh" else " ROTTEN\n") for t, g in zip(texts, gold, strict=True)}
    said[texts[5]] = "no idea"
    server = fake_openai(labels=said)
    rows = [{"id": f"r{i}", "text": t, "reference": g} for i, (t, g) in enumerate(zip(texts, gold,
                                                                                    strict=True))]
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "clf-student.jsonl").write_text("".join(
        json.dumps({"id": f"r{i}", "label": g}) + "\n" for i, g in enumerate(gold)), "utf-8")
    suite = write_suite(
        repo, "clf", task="classification", labels=["fresh", "rotten"], rows=rows,
        teacher={"type": "openai", "base_url": server.base_url, "model": "fake-teacher",
                 "labels_map": {"positive": "fresh"}, "generation": {"max_new_tokens": 3}},
        student={"type": "predictions", "path": "../data/clf-student.jsonl"},
        criteria=[{"name": "agree", "metric": "agreement", "compare": "value", "min": 0.5,
                   "scope": "overall", "decision": "point"}])
    assert main(["run", str(suite), "--report", "clf.json"]) == 0, capsys.readouterr().err
    doc = json.loads((repo / "clf.json").read_text("utf-8"))
    (check,) = doc["suites"][0]["checks"]
    assert check["value"] == 7 / 8  # the invalid answer disagrees with the student
    teacher = doc["suites"][0]["teacher"]
    assert teacher["usage"]["requests"] == 8
    assert teacher["invalid_rate"] == 1 / 8


def test_dry_run_counts_requests_and_prices_them_without_asking(fake_openai, repo, capsys):
    server = fake_openai()
    suite = _suite(repo, server.base_url)
    assert main(["run", str(suite), "--dry-run"]) == 0
    out = capsys.readouterr().out
    chars = sum(len(p) for p in PROMPTS)
    tokens_in = -(-chars // 4)
    usd = (1.0 * tokens_in + 3.0 * 8 * 12) / 1e6
    assert (f"teacher (openai fake-teacher, chat): 8 requests (0 of 8 examples cached), "
            f"~{tokens_in} input tokens + at most 96 output tokens, estimated ${usd:,.4f}") in out
    assert "student (predictions): runs locally on 8 examples (none cached), no requests" in out
    assert "8 requests in all" in out and "prompt characters / 4" in out
    assert sum(server.requests.values()) == 0


def test_dry_run_without_prices_says_so(fake_openai, repo, capsys):
    suite = _suite(repo, fake_openai().base_url, metadata={"params": 1e9})
    assert main(["run", str(suite), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "no price (metadata.usd_per_million_tokens not set)" in out
    assert "some have no metadata.usd_per_million_tokens" in out


def test_pytest_dry_run_flag(fake_openai, repo, pytester):
    server = fake_openai()
    _suite(repo, server.base_url)
    result = pytester.runpytest_inprocess(f"--distill-suite={repo / 'suites'}", "--distill-dry-run",
                                          f"--distill-cache={repo / '.distill-cache'}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["distill dry run: suite endpoint *",
                                 "  teacher (openai fake-teacher, chat): 8 requests *",
                                 "distill dry run: 8 requests in all*"])
    assert sum(server.requests.values()) == 0
    result = pytester.runpytest_inprocess("--distill-dry-run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--distill-dry-run needs --distill-suite*"])


def test_under_pytest_a_ci_log_gets_one_progress_line_per_stage(fake_openai, repo, pytester):
    """Not a terminal (a CI log): the endpoint's stage line comes through pytest's terminal
    writer although the run happens inside a captured test item; quiet with -q -q."""
    server = fake_openai(api_key=KEY)
    _suite(repo, server.base_url)
    args = (f"--distill-suite={repo / 'suites'}", f"--distill-cache={repo / '.distill-cache'}",
            "-p", "no:cacheprovider")
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == 0
    result.stdout.re_match_lines([r"^teacher: 8/8 requests in \d+\.\ds, [\d.]+ requests/s$"])
    assert "\r" not in result.stdout.str()
    quiet = pytester.runpytest_inprocess(*args, "-q", "-q", f"--distill-cache={repo / 'other'}")
    assert quiet.ret == 0 and sum(server.requests.values()) == 16  # asked again, quietly
    assert "requests/s" not in quiet.stdout.str()


def test_only_the_endpoint_adapter_imports_openai():
    import ast

    import harness

    package = Path(harness.__file__).resolve().parent
    offenders = []
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        if "openai" in names and path.name != "openai_compat.py":
            offenders.append(path.name)
    assert offenders == []
