"""Judges end to end: a chat distillation with no references, graded by a scripted judge behind a
real OpenAI-compatible HTTP server on 127.0.0.1, gated through ``distill run``.

The suite: 120 questions over four topics; teacher and student answers are prediction files.
The student answers every ``math`` question wrongly (a planted pocket); elsewhere its answers
are as good as the teacher's. The judge's policy (a fixed function of what it is shown) prefers
the answer without "WRONG" and calls a tie otherwise — unless a test plants a bias.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from judge_server import PAIRWISE_PROMPT, JudgeServer, shown

TOPICS = ("math", "code", "chat", "travel")
SECRET = "sk-judge-secret-4242"


def honest(prompt: str) -> str:
    a, b = shown(prompt)
    bad_a, bad_b = "WRONG" in a, "WRONG" in b
    verdict = "C" if bad_a == bad_b else ("B" if bad_a else "A")
    return f"A [[B]] would mean the second is better. Weighing both: [[{verdict}]]"


def rows() -> list[dict]:
    return [{"id": f"q{i:03d}", "text": f"Question {i} about {TOPICS[i % 4]}?",
             "topic": TOPICS[i % 4]} for i in range(120)]


def teacher_answer(r: dict) -> str:
    return f"A careful answer to {r['id']}."


def student_answer(r: dict) -> str:
    if r["topic"] == "math":
        return f"WRONG answer to {r['id']}."
    return f"A careful answer to {r['id']}."


def write_repo(root: Path, *, student=student_answer, criteria=None, swap=True) -> Path:
    for d in ("data", "suites", "rubrics/judges", "preds"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n", "utf-8")
    data = rows()
    (root / "data" / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data), "utf-8")
    (root / "preds" / "teacher.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "output": teacher_answer(r)}) + "\n" for r in data))
    (root / "preds" / "student.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "output": student(r)}) + "\n" for r in data))
    (root / "rubrics" / "judges" / "helpful.md").write_text(PAIRWISE_PROMPT, "utf-8")
    if criteria is None:
        criteria = [{"name": "judged", "metric": "judge:helpful", "compare": "value",
                     "min": 0.45, "scope": "slices"}]
    (root / "rubrics" / "chat.yaml").write_text(yaml.safe_dump(
        {"schema_version": 1, "id": "chat-gate", "version": 1,
         "defaults": {"alpha": 0.05, "min_support": 10}, "criteria": criteria}), "utf-8")
    suite = {
        "schema_version": 1, "name": "chat", "version": "1", "task": "generation",
        "data": {"path": "../data/chat.jsonl", "input": "text", "features": ["topic"]},
        "teacher": {"type": "predictions", "path": "../preds/teacher.jsonl"},
        "student": {"type": "predictions", "path": "../preds/student.jsonl"},
        "rubric": "../rubrics/chat.yaml", "slices": [{"by": "topic"}],
        "judges": {"helpful": {
            "model": {"type": "openai", "base_url_env": "JUDGE_URL", "model": "judge-large",
                      "api_key_env": "JUDGE_KEY", "max_connections": 8, "timeout_s": 10,
                      "retries": 1, "generation": {"max_new_tokens": 64, "temperature": 0},
                      "metadata": {"usd_per_million_tokens": {"input": 2.5, "output": 10.0}}},
            "prompt": "../rubrics/judges/helpful.md", "swap": swap}},
    }
    (root / "suites" / "chat.yaml").write_text(yaml.safe_dump(suite, sort_keys=False), "utf-8")
    return root / "suites" / "chat.yaml"


def run(root: Path, *extra: str) -> tuple[int, dict]:
    from harness import cli

    code = cli.main(["run", "suites/chat.yaml", "--report", "out/r.json", *extra])
    return code, json.loads((root / "out" / "r.json").read_text("utf-8"))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    write_repo(tmp_path)
    return tmp_path


@contextmanager
def serving(monkeypatch, policy, **kw) -> Iterator[JudgeServer]:
    """The scripted judge on a free port of 127.0.0.1, named by JUDGE_URL while it runs."""
    with JudgeServer(policy, api_key=SECRET, **kw) as server:
        monkeypatch.setenv("JUDGE_URL", server.base_url)
        yield server


def checks(doc: dict) -> dict[str, dict]:
    return {c["id"].split("::", 1)[1]: c for s in doc["suites"] for c in s["checks"]}


def test_a_planted_pocket_fails_its_check_and_nothing_else_does(repo, monkeypatch, capsys):
    with serving(monkeypatch, honest) as server:
        code, doc = run(repo)
    out = capsys.readouterr().out
    by_id = checks(doc)
    assert code == 1
    import jsonschema

    from harness.spec import load_schema

    jsonschema.Draft202012Validator(load_schema("report")).validate(doc)
    # the terminal shows the judge's health and the verdicts behind the failing check
    assert "win rate" in out and "chat::judged[topic=math]: the judge's verdicts" in out
    assert "student_first: B, teacher_first: A" in out
    assert {k: c["verdict"] for k, c in by_id.items()} == {
        "judged[topic=chat]": "pass", "judged[topic=code]": "pass",
        "judged[topic=math]": "fail", "judged[topic=travel]": "pass"}
    math_check = by_id["judged[topic=math]"]
    assert math_check["value"] == 0.0 and math_check["n"] == 30
    assert math_check["teacher"] == 0.5
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["mode"] == "pairwise" and judge["n"] == 120
    assert judge["win_rate"] == pytest.approx(90 * 0.5 / 120)
    assert judge["consistency"] == 1.0 and judge["invalid_rate"] == 0.0
    assert judge["requests"] == 240 and judge["cached"] == 0 and server.answered == 240
    assert judge["usd"] == pytest.approx(judge["usd_this_run"]) and judge["usd"] > 0
    # the API key is in no file the run wrote
    written = [p for p in repo.rglob("*") if p.is_file()]
    assert not [p for p in written if SECRET in p.read_text("utf-8", errors="ignore")]


def test_a_rerun_sends_no_request_and_a_student_change_rejudges_only_what_changed(
        repo, monkeypatch, capsys):
    with serving(monkeypatch, honest) as server:
        run(repo)
        before = server.answered
        code, doc = run(repo)
        assert server.answered == before, "a warm rerun asks the judge nothing"
        judge = doc["suites"][0]["judges"]["helpful"]
        assert judge["requests"] == 0 and judge["cached"] == 240 and judge["usd_this_run"] == 0
        # the student now answers two math questions well: only those two are judged again
        fixed = {"q000", "q004"}
        write_repo(repo, student=lambda r: teacher_answer(r) if r["id"] in fixed
                   else student_answer(r))
        code, doc = run(repo)
        assert server.answered == before + 4  # two examples, both orders
        judge = doc["suites"][0]["judges"]["helpful"]
        assert judge["requests"] == 4 and judge["cached"] == 236
    capsys.readouterr()


def test_a_killed_run_resumes_where_it_stopped(repo, monkeypatch, capsys):
    from harness import cli

    with serving(monkeypatch, honest, stop_after=100) as server:
        assert cli.main(["run", "suites/chat.yaml", "--quiet"]) == 2, \
            "a judge that stops answering ends the run with exit 2"
        err = capsys.readouterr().err
        kept = int(re.search(r"the (\d+) answered are kept", err).group(1))
        assert 0 < kept <= 100
        server.stop_after = None
        code, doc = run(repo)
        judge = doc["suites"][0]["judges"]["helpful"]
        assert judge["requests"] == 240 - kept, "the rerun asks only for the missing judgments"
        assert judge["cached"] == kept and judge["n"] == 120
    capsys.readouterr()


def always_first(prompt: str) -> str:
    return "The first one. [[A]]"


def test_position_bias_cancels_under_swap(repo, monkeypatch, capsys):
    write_repo(repo, student=teacher_answer)
    with serving(monkeypatch, always_first):
        code, doc = run(repo)
    capsys.readouterr()
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["win_rate"] == 0.5 and judge["first_preferred"] == 1.0
    assert judge["consistency"] == 0.0
    assert code == 0
    assert any("position noise" in n for n in doc["suites"][0]["notes"])


def prefers_longer(prompt: str) -> str:
    a, b = shown(prompt)
    return "[[A]]" if len(a) > len(b) else ("[[B]]" if len(b) > len(a) else "[[C]]")


def test_length_bias_is_found_and_the_length_controlled_win_rate_discounts_it(
        repo, monkeypatch, capsys):
    # the student pads three answers in four; the judge looks only at length
    def padded(r):
        n = int(r["id"][1:])
        return teacher_answer(r) + (" Also, as always, more words." * 3 if n % 4 else "")

    write_repo(repo, student=padded, criteria=[
        {"name": "judged", "metric": "judge:helpful", "compare": "value", "min": 0.45,
         "scope": "overall"},
        {"name": "length_bias", "metric": "judge_longer_preferred:helpful", "compare": "value",
         "max": 0.7, "scope": "overall"}])
    with serving(monkeypatch, prefers_longer):
        code, doc = run(repo)
    capsys.readouterr()
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["longer_preferred"] == 1.0
    assert judge["win_rate"] == 0.875  # 90 padded answers win, 30 equal ones tie
    # at no length difference the judge calls a tie: the length-controlled rate is a half
    assert judge["lc_win_rate"] == pytest.approx(0.5, abs=0.02)
    assert judge["lc_ci"][0] <= judge["lc_win_rate"] <= judge["lc_ci"][1]
    assert checks(doc)["length_bias[overall]"]["verdict"] == "fail"
    assert code == 1


def no_verdict(prompt: str) -> str:
    return "Both answers have merit."


def test_a_judge_that_never_answers_the_format_errors_with_one_clear_message(
        repo, monkeypatch, capsys):
    with serving(monkeypatch, no_verdict):
        code, doc = run(repo)
    capsys.readouterr()
    assert code == 1
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["invalid_rate"] == 1.0 and judge["n"] == 0
    for check in checks(doc).values():
        assert check["verdict"] == "error"
        assert re.search(r"every judgment was invalid", check["message"])


def test_a_judge_criterion_naming_an_undeclared_judge_is_a_spec_error(repo, capsys):
    from harness import cli

    write_repo(repo, criteria=[{"name": "j", "metric": "judge:kind", "compare": "value",
                                "min": 0.45, "scope": "overall"}])
    assert cli.main(["run", "suites/chat.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "judge:kind names judge 'kind', which the suite does not declare" in err


def test_a_prompt_placeholder_that_cannot_be_filled_is_a_spec_error(repo, capsys):
    from harness import cli

    (repo / "rubrics" / "judges" / "helpful.md").write_text(
        "Q {prompt} A {answer_a} B {answer_b} {colour}", "utf-8")
    assert cli.main(["run", "suites/chat.yaml", "--quiet"]) == 2
    assert "placeholder {colour}" in capsys.readouterr().err


def test_dry_run_counts_the_judge_requests_and_their_cost_asking_nothing(
        repo, monkeypatch, capsys):
    from harness import cli

    with serving(monkeypatch, honest) as server:
        assert cli.main(["run", "suites/chat.yaml", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert server.requests == 0
        assert re.search(r"judge helpful \(openai judge-large, chat\): 240 requests "
                         r"\(0 of 240 examples cached\).*estimated \$", out), out
        run(repo)
        capsys.readouterr()
        answered = server.answered
        assert cli.main(["run", "suites/chat.yaml", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert server.answered == answered
        assert "judge helpful (openai judge-large, chat): 0 requests (240 of 240" in out


def test_collect_only_sends_no_judge_request_and_each_judge_check_is_an_item(
        repo, monkeypatch, pytester):
    with serving(monkeypatch, honest) as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--distill-suite",
                                    str(repo / "suites" / "chat.yaml"), "--collect-only", "-q")
        assert server.requests == 0
        result.stdout.fnmatch_lines(["*chat.yaml::judged[[]topic=chat[]]",
                                     "*chat.yaml::judged[[]topic=math[]]"])
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--distill-suite",
                                    str(repo / "suites" / "chat.yaml"))
        result.assert_outcomes(passed=3, failed=1)
        assert server.answered == 240


def scores_by_care(prompt: str) -> str:
    from judge_server import shown_one

    answer = shown_one(prompt)
    score = 2 if "WRONG" in answer else (9 if "careful" in answer else 5)
    return f"Considered. Score: [[{score}]]"


def test_pointwise_scores_are_paired_and_the_teachers_lowest_join_the_audit(
        repo, monkeypatch, capsys):
    from judge_server import POINTWISE_PROMPT

    write_repo(repo, criteria=[{"name": "scored", "metric": "judge:helpful",
                                "compare": "teacher_delta", "min": -1.0, "scope": "slices"}])
    (repo / "rubrics" / "judges" / "helpful.md").write_text(POINTWISE_PROMPT, "utf-8")
    suite = yaml.safe_load((repo / "suites" / "chat.yaml").read_text("utf-8"))
    suite["judges"]["helpful"].update(mode="pointwise", scale={"min": 1, "max": 10})
    del suite["judges"]["helpful"]["swap"]
    # the teacher's answer to q001 is poor: the judge scores it 5, below every other
    (repo / "preds" / "teacher.jsonl").write_text("".join(
        json.dumps({"id": r["id"], "output": "Something." if r["id"] == "q001"
                    else teacher_answer(r)}) + "\n" for r in rows()))
    (repo / "suites" / "chat.yaml").write_text(yaml.safe_dump(suite, sort_keys=False), "utf-8")
    with serving(monkeypatch, scores_by_care):
        code, doc = run(repo)
    capsys.readouterr()
    by_id = checks(doc)
    math_check = by_id["scored[topic=math]"]
    assert math_check["value"] == pytest.approx(2 - 9) and math_check["verdict"] == "fail"
    assert by_id["scored[topic=code]"]["verdict"] == "pass"
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["mode"] == "pointwise" and judge["requests"] == 240
    audit = doc["suites"][0]["teacher_audit"]
    assert audit["judge_suspects"][0] == {"id": "q001", "judge": "helpful", "score": 5.0}
    assert "q001" in audit["suspect_ids"]
    assert code == 1


def test_agreement_with_peoples_labels_is_reported_and_gated(repo, monkeypatch, capsys):
    write_repo(repo, criteria=[{"name": "agrees", "metric": "judge_agreement:helpful",
                                "compare": "value", "min": 0.9}])
    # people labelled the first 40 examples: the teacher wins on math, ties elsewhere; one
    # label disagrees with the judge
    data = rows()
    for r in data[:40]:
        r["human_pref"] = "teacher" if r["topic"] == "math" else "tie"
    data[1]["human_pref"] = "student"
    (repo / "data" / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))
    suite = yaml.safe_load((repo / "suites" / "chat.yaml").read_text("utf-8"))
    suite["judge_labels"] = {"helpful": "human_pref"}
    (repo / "suites" / "chat.yaml").write_text(yaml.safe_dump(suite, sort_keys=False), "utf-8")
    with serving(monkeypatch, honest):
        code, doc = run(repo)
    capsys.readouterr()
    agreement = doc["suites"][0]["judges"]["helpful"]["agreement"]
    assert agreement["n"] == 40 and agreement["rate"] == pytest.approx(39 / 40)
    assert 0.9 < agreement["kappa"] < 1.0
    assert checks(doc)["agrees[overall]"]["verdict"] == "pass"


def test_a_judge_of_saved_answers_reads_one_line_per_example_and_order(repo, capsys):
    # the honest judge's answers, saved by a batch job; q005's teacher-first judgment is missing
    lines = []
    for r in rows():
        s, t = student_answer(r), teacher_answer(r)
        for order, (a, b) in (("student_first", (s, t)), ("teacher_first", (t, s))):
            if (r["id"], order) != ("q005", "teacher_first"):
                lines.append({"id": r["id"], "order": order, "output": honest(
                    PAIRWISE_PROMPT.format(prompt="", answer_a=a, answer_b=b))})
    (repo / "preds" / "judge.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    suite = yaml.safe_load((repo / "suites" / "chat.yaml").read_text("utf-8"))
    suite["judges"]["helpful"]["model"] = {"type": "predictions", "path": "../preds/judge.jsonl"}
    (repo / "suites" / "chat.yaml").write_text(yaml.safe_dump(suite, sort_keys=False), "utf-8")
    code, doc = run(repo)
    capsys.readouterr()
    judge = doc["suites"][0]["judges"]["helpful"]
    assert judge["n"] == 119 and judge["invalid_rate"] == pytest.approx(1 / 240)
    assert judge["requests"] == 0
    assert checks(doc)["judged[topic=math]"]["verdict"] == "fail"
    assert checks(doc)["judged[topic=code]"]["verdict"] == "pass"
    assert code == 1
