"""pytester runs of the real plugin: item names, exit codes, collection errors, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.spec import load_schema

FLAGS = ("-p", "no:cacheprovider", "--distill-no-cache")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*FLAGS, *args)


# --------------------------------------------------------------------------- items and verdicts

def test_item_names_and_exit_1_when_the_student_breaches(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "-v")
    result.stdout.fnmatch_lines([
        "*suites/tiny.yaml::quality_ratio[[]overall[]] PASSED*",
        "*suites/tiny.yaml::slice_gap[[]lang=de[]] FAILED*",
        "*suites/tiny.yaml::slice_gap[[]lang=en[]] PASSED*",
        "*suites/tiny.yaml::slice_gap[[]has_negation=false[]] FAILED*",
        "*suites/tiny.yaml::slice_gap[[]has_negation=true[]] PASSED*",
        "*suites/tiny.yaml::slice_gap[[]short[]] PASSED*",
        "*suites/tiny.yaml::flips[[]overall[]] PASSED*",
    ])
    assert result.ret == 1
    result.assert_outcomes(passed=5, failed=2)


def test_exit_0_when_the_student_meets_its_rubric(pytester, tiny_repo):
    tiny_repo.make_meeting()
    result = run(pytester, "--distill-suite", "suites/tiny.yaml")
    assert result.ret == 0
    result.assert_outcomes(passed=7)


def test_a_folder_of_suites_is_collected(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suites/tiny.yaml::slice_gap[[]lang=de[]]"])
    assert result.ret == 0


def test_failing_item_prints_metric_value_ci_n_threshold_p_and_ids(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/tiny.yaml")
    text = result.stdout.str()
    start = text.index("FAIL: tiny::slice_gap[lang=de]")
    block = text[start:start + 1500]
    assert "accuracy (student - teacher) = -0.7500" in block
    assert "CI [" in block
    assert "n=8" in block
    assert "threshold min -0.05" in block
    assert "p=" in block and "q=" in block
    # the ids the teacher got right and the student gets wrong
    for ex_id in ("e00", "e03", "e06", "e12", "e15"):
        assert ex_id in block


def test_terminal_summary_prints_a_table_per_suite(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/tiny.yaml")
    result.stdout.fnmatch_lines([
        "*distill-harness*",
        "*distill suite tiny v1 (24 examples*",
        "slice*n*teacher*student*delta*CI*verdict*",
        "lang=de*8*fail*",
    ])


# --------------------------------------------------------------------------- the flag itself

def test_nothing_is_collected_without_the_flag(pytester, tiny_repo):
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "tiny.yaml" not in result.stdout.str()
    assert "= distill-harness =" not in result.stdout.str()
    assert result.ret == 0


def test_bare_flag_uses_the_ini_default_suites_folder(pytester, tiny_repo):
    # no ini option: the default is suites/
    result = pytester.runpytest("-p", "no:cacheprovider", "--distill-no-cache", "--distill-suite",
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["suites/tiny.yaml::slice_gap[[]lang=de[]]"])


def test_bare_flag_uses_the_ini_option(pytester, tiny_repo):
    (tiny_repo / "suites").rename(tiny_repo / "gates")
    (tiny_repo / "gates" / "tiny.yaml").write_text(
        (tiny_repo / "gates" / "tiny.yaml").read_text("utf-8"), "utf-8")
    pytester.makeini("[pytest]\ndistill_suites = gates/tiny.yaml\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--distill-no-cache", "--distill-suite",
                                "--collect-only", "-q")
    result.stdout.fnmatch_lines(["gates/tiny.yaml::slice_gap[[]lang=de[]]"])
    assert result.ret == 0


def test_a_suite_path_that_does_not_exist_is_a_usage_error(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--distill-suite: 'suites/nope.yaml' does not exist*"])


# --------------------------------------------------------------------------- reports

def test_json_report_validates_against_its_schema(pytester, tiny_repo):
    import jsonschema

    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "--distill-report", "out/r.json")
    assert result.ret == 1
    doc = json.loads((tiny_repo / "out" / "r.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(load_schema("report")).validate(doc)
    assert doc["verdict"] == "fail"
    (suite,) = doc["suites"]
    assert suite["name"] == "tiny" and suite["n"] == 24
    assert suite["rubric"] == {"id": "tiny-gate", "version": 1} | {
        k: v for k, v in suite["rubric"].items() if k not in ("id", "version")}
    checks = {c["id"]: c for c in suite["checks"]}
    de = checks["tiny::slice_gap[lang=de]"]
    assert de["verdict"] == "fail" and de["n"] == 8 and de["slice"] == "lang=de"
    assert de["value"] == pytest.approx(-0.75)
    assert de["threshold"] == {"min": -0.05}
    assert checks["tiny::slice_gap[lang=en]"]["verdict"] == "pass"


def test_markdown_report_is_written(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "--distill-markdown", "r.md")
    assert result.ret == 1
    text = (tiny_repo / "r.md").read_text("utf-8")
    assert "tiny" in text and "lang=de" in text and "|" in text


def test_markdown_also_goes_to_the_github_step_summary(pytester, tiny_repo, monkeypatch):
    summary = tiny_repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run(pytester, "--distill-suite", "suites/tiny.yaml", "--distill-markdown", "r.md")
    assert "lang=de" in summary.read_text("utf-8")


# --------------------------------------------------------------------------- evaluated once

COUNTING_MODEL = '''
import os

def _count(role):
    with open(os.environ["TINY_CALLS"], "a", encoding="utf-8") as fh:
        fh.write(role + "\\n")

def teacher(examples):
    _count("teacher")
    return [{"label": ex["label"] if ex["id"] != "e23" else ("pos" if ex["label"] == "neg" else "neg")}
            for ex in examples]

def student(examples):
    _count("student")
    wrong = {"e00", "e03", "e06", "e12", "e15", "e18", "e23"}
    return [("pos" if ex["label"] == "neg" else "neg") if ex["id"] in wrong else ex["label"]
            for ex in examples]
'''


def _callable_suite(root: Path) -> None:
    (root / "tinymodels.py").write_text(COUNTING_MODEL, "utf-8")
    text = (root / "suites" / "tiny.yaml").read_text("utf-8")
    text = text.replace("teacher:\n  type: predictions\n  path: ../data/teacher.jsonl",
                        "teacher:\n  type: callable\n  target: tinymodels:teacher")
    text = text.replace("student:\n  type: predictions\n  path: ../data/student.jsonl",
                        "student:\n  type: callable\n  target: tinymodels:student")
    assert "callable" in text
    (root / "suites" / "tiny.yaml").write_text(text, "utf-8")


def test_each_suite_is_evaluated_once_per_session(pytester, tiny_repo, monkeypatch):
    _callable_suite(tiny_repo.path)
    calls = tiny_repo / "calls.txt"
    monkeypatch.setenv("TINY_CALLS", str(calls))
    pytester.syspathinsert(tiny_repo.path)
    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "--distill-suite", "suites",
                 "--distill-report", "r.json")
    result.assert_outcomes(passed=5, failed=2)
    assert sorted(calls.read_text("utf-8").split()) == ["student", "teacher"]


# --------------------------------------------------------------------------- collection errors

def _collection_error(pytester: pytest.Pytester, *lines: str) -> pytest.RunResult:
    result = run(pytester, "--distill-suite", "suites/tiny.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2: errors during collection
    result.stdout.fnmatch_lines(["*ERROR collecting suites/tiny.yaml*", *lines])
    assert "Traceback" not in result.stdout.str()
    return result


def test_malformed_yaml_is_a_collection_error(pytester, tiny_repo):
    (tiny_repo / "rubrics" / "tiny.yaml").write_text("criteria: [a, b\n", "utf-8")
    _collection_error(pytester, "*rubrics/tiny.yaml: invalid YAML at line *")


def test_schema_violation_names_file_field_and_expectation(pytester, tiny_repo):
    path = tiny_repo / "rubrics" / "tiny.yaml"
    path.write_text(path.read_text("utf-8").replace("compare: value", "compare: teacher_ration"),
                    "utf-8")
    _collection_error(pytester, "*rubrics/tiny.yaml: criteria[[]2[]].compare: 'teacher_ration' is "
                      "not one of value, teacher_ratio, teacher_delta*")


def test_unknown_metric_is_a_collection_error_with_did_you_mean(pytester, tiny_repo):
    path = tiny_repo / "rubrics" / "tiny.yaml"
    path.write_text(path.read_text("utf-8").replace("metric: negative_flip_rate",
                                                    "metric: negative_flip_rat"), "utf-8")
    _collection_error(pytester, "*rubrics/tiny.yaml: criteria[[]2[]].metric: unknown metric "
                      "'negative_flip_rat' (did you mean 'negative_flip_rate'?)*")


def test_path_that_escapes_the_repository_is_a_collection_error(pytester, tiny_repo):
    path = tiny_repo / "suites" / "tiny.yaml"
    path.write_text(path.read_text("utf-8").replace("rubric: ../rubrics/tiny.yaml",
                                                    "rubric: ../../rubrics/tiny.yaml"), "utf-8")
    _collection_error(pytester, "*suites/tiny.yaml: rubric: path '../../rubrics/tiny.yaml' leaves "
                      "the repository root*")


def test_missing_data_file_is_a_collection_error(pytester, tiny_repo):
    (tiny_repo / "data" / "eval.jsonl").unlink()
    _collection_error(pytester, "*suites/tiny.yaml: data.path: '../data/eval.jsonl' not found*")


def test_duplicate_id_in_the_data_is_a_collection_error(pytester, tiny_repo):
    tiny_repo.edit_jsonl("data/eval.jsonl", 5, id="e04")
    _collection_error(pytester, "*data/eval.jsonl: line 6: duplicate id 'e04' (first at line 5)*")


def test_prediction_file_missing_an_id_is_a_collection_error(pytester, tiny_repo):
    path = tiny_repo / "data" / "student.jsonl"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[4:]), "utf-8")
    _collection_error(pytester, "*data/student.jsonl: 1 example id(s) have no prediction: 'e03'*")


def test_prediction_label_outside_the_label_set_is_a_collection_error(pytester, tiny_repo):
    tiny_repo.edit_jsonl("data/student.jsonl", 2, label="neutral", scores=None)
    _collection_error(pytester, "*data/student.jsonl: line 3: id 'e02': label 'neutral' is not one "
                      "of pos, neg*")


def test_prediction_nan_score_is_a_collection_error(pytester, tiny_repo):
    path = tiny_repo / "data" / "teacher.jsonl"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[1] = '{"id": "e01", "label": "neg", "scores": {"neg": NaN, "pos": 0.2}}\n'
    path.write_text("".join(lines), "utf-8")
    _collection_error(pytester, "*data/teacher.jsonl: line 2: id 'e01': score for 'neg' is nan, "
                      "expected a finite number*")


def test_empty_data_set_is_a_collection_error(pytester, tiny_repo):
    (tiny_repo / "data" / "eval.jsonl").write_text("", "utf-8")
    _collection_error(pytester, "*data/eval.jsonl: the data set has no examples*")


def test_slice_matching_no_example_is_a_collection_error(pytester, tiny_repo):
    path = tiny_repo / "suites" / "tiny.yaml"
    path.write_text(path.read_text("utf-8").replace("{n_words: {lt: 5}}", "{n_words: {lt: 0}}"),
                    "utf-8")
    _collection_error(pytester, "*suites/tiny.yaml: slices[[]2[]]: slice 'short' matches no "
                      "example of data/eval.jsonl*")


def test_sha256_pin_mismatch_is_a_collection_error(pytester, tiny_repo):
    path = tiny_repo / "suites" / "tiny.yaml"
    path.write_text(path.read_text("utf-8").replace("  id: id\n", "  sha256: '" + "0" * 64 + "'\n"
                                                    "  id: id\n"), "utf-8")
    _collection_error(pytester, "*data/eval.jsonl: sha256 is *, but the suite pins 0000*")


def test_one_bad_suite_does_not_hide_a_good_one(pytester, tiny_repo):
    tiny_repo.make_meeting()
    bad = tiny_repo / "suites" / "broken.yaml"
    bad.write_text("schema_version: 1\nname: broken\n", "utf-8")
    result = run(pytester, "--distill-suite", "suites")
    result.stdout.fnmatch_lines(["*suites/broken.yaml: version: required field is missing*"])
    # pytest stops after a collection error; the good suite's items were still collected
    result.stdout.fnmatch_lines(["collected 7 items / 1 error"])
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED


# --------------------------------------------------------------------------- pytest and the CLI agree

def test_distill_run_gives_the_same_verdicts_as_pytest(pytester, tiny_repo, capsys):
    from harness import cli

    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "--distill-report", "py.json", "-rA")
    code = cli.main(["run", "suites/tiny.yaml", "--no-cache", "--quiet", "--report", "cli.json"])
    capsys.readouterr()
    assert code == result.ret == 1
    from_pytest = json.loads((tiny_repo / "py.json").read_text("utf-8"))
    from_cli = json.loads((tiny_repo / "cli.json").read_text("utf-8"))
    assert from_cli["verdict"] == from_pytest["verdict"] == "fail"
    verdicts = {c["id"]: c["verdict"] for c in from_pytest["suites"][0]["checks"]}
    assert verdicts == {c["id"]: c["verdict"] for c in from_cli["suites"][0]["checks"]}
    # each item's outcome follows its check's verdict
    for check_id, verdict in verdicts.items():
        item = "suites/tiny.yaml::" + check_id.split("::", 1)[1]
        outcome = "FAILED" if verdict in ("fail", "error") else "PASSED"
        result.stdout.fnmatch_lines([f"{outcome} {item.replace('[', '[[]')}*"])


def test_distill_result_fixture_gives_the_suite_result(pytester, tiny_repo):
    pytester.makepyfile(test_mine='''
        def test_german_slice_is_reported(distill_result):
            result = distill_result("suites/tiny.yaml")
            assert result.name == "tiny"
            rows = {row["slice"]: row for row in result.slices}
            assert rows["lang=de"]["delta"] < 0
            assert result.verdict == "fail"
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "test_mine.py", "--distill-no-cache")
    result.assert_outcomes(passed=1)


def test_distill_result_resolves_against_the_rootdir_from_a_subfolder(pytester, tiny_repo):
    (tiny_repo / "tests").mkdir()
    (tiny_repo / "tests" / "test_mine.py").write_text(
        "def test_from_a_subfolder(distill_result):\n"
        "    assert distill_result('suites/tiny.yaml').name == 'tiny'\n", "utf-8")
    pytester.chdir()
    import os

    os.chdir(tiny_repo / "tests")
    result = pytester.runpytest("-p", "no:cacheprovider", "test_mine.py", "--distill-no-cache")
    result.assert_outcomes(passed=1)


def test_distill_result_on_a_broken_suite_fails_with_one_line(pytester, tiny_repo):
    (tiny_repo / "rubrics" / "tiny.yaml").write_text("criteria: [a, b\n", "utf-8")
    pytester.makepyfile(test_mine='''
        def test_uses_a_broken_suite(distill_result):
            distill_result("suites/tiny.yaml")

        def test_uses_a_missing_suite(distill_result):
            distill_result("suites/nope.yaml")
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "test_mine.py", "--distill-no-cache")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*distill_result('suites/tiny.yaml'): rubrics/tiny.yaml*",
        "*distill_result('suites/nope.yaml'): no such suite file*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert "SpecError" not in result.stdout.str()


# --------------------------------------------------------------------------- nothing ran, or broken

def test_collect_only_prints_no_verdict_and_writes_no_report(pytester, tiny_repo):
    result = run(pytester, "--distill-suite", "suites/tiny.yaml", "--collect-only",
                 "--distill-report", "r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["distill: no check ran, so there is no verdict"])
    result.stdout.no_fnmatch_line("*distill verdict*")
    assert not (tiny_repo / "r.json").exists()


def test_a_broken_suite_is_reported_as_fail_everywhere(pytester, tiny_repo, monkeypatch):
    tiny_repo.make_meeting()
    (tiny_repo / "suites" / "broken.yaml").write_text("schema_version: 1\nname: broken\n", "utf-8")
    summary = tiny_repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run(pytester, "--distill-suite", "suites/broken.yaml", "--distill-report", "r.json",
                 "--distill-markdown", "r.md")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["distill verdict: FAIL"])
    result.stdout.no_fnmatch_line("*verdict: PASS*")
    doc = json.loads((tiny_repo / "r.json").read_text("utf-8"))
    assert doc["verdict"] == "fail"
    assert [e["suite"] for e in doc["errors"]] == ["suites/broken.yaml"]
    assert "version: required field is missing" in doc["errors"][0]["message"]
    for text in ((tiny_repo / "r.md").read_text("utf-8"), summary.read_text("utf-8")):
        assert "PASS" not in text.splitlines()[0] and "FAIL" in text.splitlines()[0]
    result.stdout.fnmatch_lines(["::error file=suites/broken.yaml*"])
