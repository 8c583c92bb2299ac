"""cli.py: ``distill run / validate / report`` and exit codes 0 / 1 / 2 / 3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.spec import load_schema

TINY = Path(__file__).resolve().parents[1] / "data" / "tinyrepo"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture
def repo(tiny_copy, monkeypatch) -> Path:
    root = tiny_copy
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")


def distill(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- run

def test_run_fails_the_breaching_student_and_writes_a_valid_report(repo, capsys):
    import jsonschema

    code, out, err = distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report",
                             "out/r.json", "--markdown", "out/r.md")
    assert code == 1
    assert "distill verdict: FAIL" in out and "lang=de" in out
    doc = json.loads((repo / "out" / "r.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(load_schema("report")).validate(doc)
    verdicts = {c["id"]: c["verdict"] for c in doc["suites"][0]["checks"]}
    assert verdicts == {
        "tiny::quality_ratio[overall]": "pass",
        "tiny::slice_gap[lang=de]": "fail",
        "tiny::slice_gap[lang=en]": "pass",
        "tiny::slice_gap[has_negation=false]": "fail",
        "tiny::slice_gap[has_negation=true]": "pass",
        "tiny::slice_gap[short]": "inconclusive",
        "tiny::flips[overall]": "pass",
    }
    assert "lang=de" in (repo / "out" / "r.md").read_text("utf-8")


def test_run_passes_the_meeting_student(repo, capsys):
    shutil.copyfile(repo / "data" / "teacher.jsonl", repo / "data" / "student.jsonl")
    code, out, _ = distill(capsys, "run", "suites", "--no-cache", "--quiet")
    assert code == 0
    assert "distill verdict: PASS" in out


def test_run_report_is_deterministic(repo, capsys):
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "a.json")
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "b.json")
    a = json.loads((repo / "a.json").read_text("utf-8"))
    b = json.loads((repo / "b.json").read_text("utf-8"))
    assert a["suites"][0]["checks"] == b["suites"][0]["checks"]


def test_messages_name_the_flag_of_distill_run(repo, capsys):
    """No baseline yet: ``distill run`` says ``--update-baselines`` (its own flag), never the
    pytest spelling; the report carries the same words."""
    with (repo / "rubrics" / "tiny.yaml").open("a", encoding="utf-8") as f:
        f.write("  - {name: vs_baseline, metric: accuracy, compare: baseline_delta, min: -0.01, "
                "scope: overall}\n")
    code, out, _ = distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "r.json")
    assert code == 1
    report = (repo / "r.json").read_text("utf-8")
    assert "run with --update-baselines to write one" in out
    assert "run with --update-baselines to write one" in report
    assert "--distill-update-baselines" not in out + report
    code, _, _ = distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--update-baselines")
    assert code == 1  # the student still fails the other checks; the baseline is written
    assert (repo / "baselines" / "tiny.json").is_file()
    from harness.options import Options

    assert Options().flag("update-baselines") == "--distill-update-baselines"  # pytest's spelling


def test_remote_code_message_names_the_flag_of_distill_run(repo, capsys):
    pytest.importorskip("transformers")
    folder = repo / "models" / "student"
    folder.mkdir(parents=True)
    for name, text in (("config.json", '{"model_type": "bert"}'), ("tokenizer_config.json", "{}")):
        (folder / name).write_text(text, "utf-8")
    (folder / "model.safetensors").write_bytes(b"never loaded: the spec is refused first")
    edit(repo / "suites" / "tiny.yaml", "student:\n  type: predictions\n  path: ../data/student.jsonl",
         "student:\n  type: transformers\n  path: ../models/student\n  trust_remote_code: true")
    code, _, err = distill(capsys, "run", "suites/tiny.yaml", "--no-cache")
    assert code == 2
    line = one_line(err)
    assert "student.trust_remote_code" in line and "needs --allow-remote-code" in line, line


# --------------------------------------------------------------------------- bad input: exit 2

def _lines(path: Path, *, drop: int | None = None, replace: tuple[int, str] | None = None) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    if replace is not None:
        lines[replace[0]] = replace[1] + "\n"
    if drop is not None:
        del lines[drop]
    path.write_text("".join(lines), "utf-8")


BAD_INPUTS = {
    "malformed yaml": (lambda r: (r / "rubrics" / "tiny.yaml").write_text("a: [b\n", "utf-8"),
                       "rubrics/tiny.yaml: invalid YAML at line 2"),
    "schema violation": (lambda r: edit(r / "rubrics" / "tiny.yaml", "compare: value",
                                        "compare: teacher_ration"),
                         "rubrics/tiny.yaml: criteria[2].compare: 'teacher_ration' is not one of "
                         "value, teacher_ratio, "),
    "unknown metric": (lambda r: edit(r / "rubrics" / "tiny.yaml", "metric: accuracy, compare: "
                                      "teacher_ratio", "metric: acurracy, compare: teacher_ratio"),
                       "rubrics/tiny.yaml: criteria[0].metric: unknown metric 'acurracy' "
                       "(did you mean 'accuracy'?); known metrics: accuracy, "),
    "escaping path": (lambda r: edit(r / "suites" / "tiny.yaml", "path: ../data/eval.jsonl",
                                     "path: ../../eval.jsonl"),
                      "suites/tiny.yaml: data.path: path '../../eval.jsonl' leaves the repository"),
    "missing data file": (lambda r: (r / "data" / "eval.jsonl").unlink(),
                          "suites/tiny.yaml: data.path: '../data/eval.jsonl' not found"),
    "duplicate id": (lambda r: _lines(r / "data" / "eval.jsonl", replace=(
        1, '{"id": "e00", "text": "x", "label": "pos", "lang": "en"}')),
        "data/eval.jsonl: line 2: duplicate id 'e00' (first at line 1)"),
    "prediction lacks an id": (lambda r: _lines(r / "data" / "student.jsonl", drop=7),
                               "data/student.jsonl: 1 example id(s) have no prediction: 'e07'"),
    "prediction label outside the set": (lambda r: _lines(r / "data" / "teacher.jsonl", replace=(
        0, '{"id": "e00", "label": "POS"}')), "data/teacher.jsonl: line 1: id 'e00': label 'POS' "
        "is not one of pos, neg"),
    "nan score": (lambda r: _lines(r / "data" / "student.jsonl", replace=(
        0, '{"id": "e00", "label": "pos", "scores": {"pos": NaN, "neg": 0.2}}')),
        "data/student.jsonl: line 1: id 'e00': score for 'pos' is nan, expected a finite number"),
    "scores not summing to 1": (lambda r: _lines(r / "data" / "student.jsonl", replace=(
        0, '{"id": "e00", "label": "pos", "scores": {"pos": 0.5, "neg": 0.2}}')),
        "data/student.jsonl: line 1: id 'e00': scores sum to 0.7, expected 1"),
    "empty data set": (lambda r: (r / "data" / "eval.jsonl").write_text("", "utf-8"),
                       "data/eval.jsonl: the data set has no examples"),
    "slice matching nothing": (lambda r: edit(r / "suites" / "tiny.yaml", "{n_words: {lt: 5}}",
                                              "{n_words: {gt: 1000}}"),
                               "suites/tiny.yaml: slices[2]: slice 'short' matches no example"),
    "sha256 pin mismatch": (lambda r: edit(r / "suites" / "tiny.yaml", "  id: id\n",
                                           f"  sha256: '{'a' * 64}'\n  id: id\n"),
                            "data/eval.jsonl: sha256 is "),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(repo, capsys, case):
    breakit, expected = BAD_INPUTS[case]
    breakit(repo)
    code, out, err = distill(capsys, "run", "suites/tiny.yaml", "--no-cache")
    assert code == 2
    assert out == ""  # nothing was gated: no table, no verdict
    line = one_line(err)
    assert line.startswith("distill: ")
    assert expected in line


def test_no_suites_in_a_folder(repo, capsys):
    (repo / "empty").mkdir()
    code, _, err = distill(capsys, "run", "empty")
    assert code == 2 and one_line(err) == "distill: no suite files in empty"


def test_missing_suite_path(repo, capsys):
    code, _, err = distill(capsys, "run", "suites/nope.yaml")
    assert code == 2 and one_line(err) == "distill: suites/nope.yaml: no such suite file or folder"


def test_usage_errors_exit_2(repo, capsys):
    code, _, err = distill(capsys, "run")
    assert code == 2 and "distill:" in err
    code, _, err = distill(capsys, "frobnicate")
    assert code == 2
    code, _, err = distill(capsys, "run", "suites/tiny.yaml", "--device", "tpu")
    assert code == 2 and "--device: 'tpu' is not one of" in one_line(err)


def test_internal_error_exits_3_without_a_traceback(repo, capsys, monkeypatch):
    from harness.session import DistillSession

    def broken(self, path):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(DistillSession, "evaluate", broken)
    code, _, err = distill(capsys, "run", "suites/tiny.yaml", "--no-cache")
    assert code == 3
    line = one_line(err)
    assert line.startswith("distill: internal error: RuntimeError: kaboom")


# --------------------------------------------------------------------------- validate

def test_validate_good_files(repo, capsys):
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "r.json")
    code, out, _ = distill(capsys, "validate", "suites/tiny.yaml", "rubrics/tiny.yaml",
                           "data/teacher.jsonl", "r.json")
    assert code == 0
    alone = " (checked without a suite: "
    assert out.splitlines() == [
        "suites/tiny.yaml: valid suite",
        "rubrics/tiny.yaml: valid rubric" + alone + "whether its metrics apply to the suite's "
        "task and data was not; pass --suite SUITE)",
        "data/teacher.jsonl: valid predictions" + alone + "its ids, labels and task were not; "
        "pass --suite SUITE)",
        "r.json: valid report"]


def test_validate_in_the_suites_context(repo, capsys):
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--update-baselines")
    code, out, _ = distill(capsys, "validate", "data/teacher.jsonl", "rubrics/tiny.yaml",
                           "baselines/tiny.json", "--suite", "suites/tiny.yaml")
    assert code == 0
    assert out.splitlines() == [f"{f}: valid {kind} in suite tiny (suites/tiny.yaml)" for f, kind in (
        ("data/teacher.jsonl", "predictions"), ("rubrics/tiny.yaml", "rubric"),
        ("baselines/tiny.json", "baseline"))]
    code, _, _ = distill(capsys, "validate", "data/teacher.jsonl", "--suite", "tiny")
    assert code == 0  # the suite by its name


# A file that is valid on its own but not for its suite: the schema cannot tell, the suite can.
IN_CONTEXT = {
    "generation output in a classification suite": (
        "data/p.jsonl", '{"id": "e00", "output": "pos"}\n',
        "data/p.jsonl: line 1: id 'e00': missing label (a classification suite's predictions "
        "give `label`; `output` is for generation)"),
    "an id the data does not have": (
        "data/p.jsonl", '{"id": "zz", "label": "pos"}\n',
        "data/p.jsonl: line 1: id 'zz' is not in the data set"),
    "a label outside the suite's": (
        "data/p.jsonl", '{"id": "e00", "label": "meh"}\n',
        "data/p.jsonl: line 1: id 'e00': label 'meh' is not one of pos, neg"),
    "a generation metric on its own": (
        "rubrics/cer.yaml", "schema_version: 1\nid: cer\nversion: 1\ncriteria:\n"
        "  - {name: cer, metric: char_error_rate, compare: value, max: 0.1, scope: overall}\n",
        "rubrics/cer.yaml: criteria[0].metric: criterion 'cer': char_error_rate is a generation "
        "metric; a classification suite takes: accuracy, "),
    "a stale baseline": (
        "baselines/tiny.json", None, "baselines/tiny.json"),
}


@pytest.mark.parametrize("case", list(IN_CONTEXT))
def test_validate_catches_what_only_the_suite_knows(repo, capsys, case):
    name, content, expected = IN_CONTEXT[case]
    if content is None:  # a baseline written for another version of the suite
        distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--update-baselines")
        edit(repo / "suites" / "tiny.yaml", 'version: "1"', 'version: "2"')
    else:
        (repo / name).write_text(content, "utf-8")
        code, out, _ = distill(capsys, "validate", name)
        assert code == 0 and "checked without a suite" in out  # the schema alone is satisfied
    code, _, err = distill(capsys, "validate", name, "--suite", "suites/tiny.yaml")
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"distill: {expected}")
    if content is None:
        assert "suite version '1' → '2'" in line


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("suites/bad.yaml", "schema_version: 1\nname: bad\nversion: 1\ntask: regression\ndata: {path: x}\n"
     "teacher: {type: predictions, path: x}\nstudent: {type: predictions, path: x}\nrubric: r\n",
     "suites/bad.yaml: task: 'regression' is not one of classification, generation"),
    ("rubrics/bad.yaml", "schema_version: 1\nid: r\nversion: 1\ncriteria:\n"
     "  - {name: a, metric: accuracy, compare: value, min: 0.5, scope: everywhere}\n",
     "rubrics/bad.yaml: criteria[0].scope: 'everywhere' is not one of overall, slices, all, discovered"),
    ("data/bad.jsonl", '{"id": "a", "label": 3}\n',
     "data/bad.jsonl: line 1: label: expected string, got 3"),
    ("bad.json", '{"schema_version": 1, "harness_version": "0.1.0", "verdict": "maybe", "suites": []}',
     "bad.json: verdict: 'maybe' is not one of "),
    ("what.yaml", "hello: world\n", "what.yaml: cannot tell what this file is"),
    ("nope.yaml", None, "nope.yaml: file not found"),
])
def test_validate_bad_files(repo, capsys, name, content, expected):
    if content is not None:
        (repo / name).write_text(content, "utf-8")
    code, _, err = distill(capsys, "validate", name)
    assert code == 2
    assert one_line(err).startswith(f"distill: {expected}")


# --------------------------------------------------------------------------- report

def test_report_renders_a_stored_report(repo, capsys):
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "r.json")
    code, out, _ = distill(capsys, "report", "r.json", "--format", "markdown")
    assert code == 1 and "|" in out and "lang=de" in out
    code, out, _ = distill(capsys, "report", "r.json", "--format", "table")
    assert code == 1 and "distill verdict: FAIL" in out and "lang=de" in out
    code, out, _ = distill(capsys, "report", "r.json")
    assert code == 1 and "slice" in out


def test_report_of_a_passing_run_exits_0(repo, capsys):
    shutil.copyfile(repo / "data" / "teacher.jsonl", repo / "data" / "student.jsonl")
    distill(capsys, "run", "suites/tiny.yaml", "--no-cache", "--report", "r.json")
    code, out, _ = distill(capsys, "report", "r.json", "--format", "markdown")
    assert code == 0


def test_report_of_a_bad_file_exits_2(repo, capsys):
    (repo / "r.json").write_text('{"schema_version": 1}', "utf-8")
    code, _, err = distill(capsys, "report", "r.json")
    assert code == 2
    assert one_line(err).startswith("distill: r.json: harness_version: required field is missing")


# --------------------------------------------------------------------------- the console script

def test_console_script_exit_codes_and_no_traceback(repo):
    exe = Path(sys.executable).with_name("distill")
    if not exe.exists():
        pytest.skip("the distill console script is not installed next to this Python")
    env = {**os.environ, **OFFLINE}
    ok = subprocess.run([str(exe), "run", "suites/tiny.yaml", "--no-cache", "--quiet"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 1, ok.stderr
    edit(repo / "rubrics" / "tiny.yaml", "compare: value", "compare: teacher_ration")
    bad = subprocess.run([str(exe), "run", "suites/tiny.yaml", "--no-cache"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("distill: rubrics/tiny.yaml: criteria[2].compare: ")


# --------------------------------------------------------------------------- a closed stdout

@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The tiny repository under git with one accepted baseline, a pin and a saved report."""
    exe = Path(sys.executable).with_name("distill")
    if not exe.exists():
        pytest.skip("the distill console script is not installed next to this Python")
    root = tmp_path_factory.mktemp("closed") / "repo"
    shutil.copytree(TINY, root)
    env = {**os.environ, **OFFLINE, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for argv in (["git", "init", "-q", "-b", "main"],
                 [str(exe), "run", "suites/tiny.yaml", "--no-cache", "--update-baselines",
                  "--report", "r.json", "--quiet"],
                 [str(exe), "baseline", "pin", "suites/tiny.yaml", "--as", "launch"],
                 ["git", "add", "-A"], ["git", "commit", "-q", "-m", "accept tiny"]):
        subprocess.run(argv, cwd=root, env=env, capture_output=True, timeout=120, check=False)
    assert (root / "baselines" / "tiny.json").is_file()
    return root


# Every command that prints, and its exit code when its output is read to the end.
CLOSED_STDOUT = [
    (["run", "suites/tiny.yaml", "--no-cache", "--report", "again.json"], 1),
    (["run", "suites/tiny.yaml", "--dry-run"], 0),
    (["validate", "suites/tiny.yaml", "rubrics/tiny.yaml", "r.json"], 0),
    (["report", "r.json"], 1),
    (["report", "r.json", "--format", "markdown"], 1),
    (["report", "r.json", "--format", "json"], 1),
    (["report", "r.json", "--format", "html"], 0),
    (["validate", "data/teacher.jsonl", "--suite", "tiny"], 0),
    (["baseline", "pin", "suites/tiny.yaml", "--as", "launch"], 0),
    (["history", "suites/tiny.yaml"], 0),
    (["history", "suites/tiny.yaml", "--format", "markdown"], 0),
    (["history", "suites/tiny.yaml", "--format", "json"], 0),
    (["compare", "baselines/tiny.json", "baselines/tiny@launch.json"], 0),
    (["--help"], 0),
    (["--version"], 0),
]


@pytest.mark.parametrize(("argv", "expected"), CLOSED_STDOUT, ids=[" ".join(a[:3]) for a, _ in CLOSED_STDOUT])
def test_a_closed_stdout_is_no_error(released, argv, expected):
    """``distill … | head -1``: the reader left before the command wrote (its end of the pipe
    is closed at once), so every write meets a broken pipe. The command still does its work and
    exits with its own code, with nothing on stderr about the pipe."""
    exe = Path(sys.executable).with_name("distill")
    proc = subprocess.Popen([str(exe), *argv], cwd=released, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **OFFLINE})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code == expected, err
    assert "BrokenPipe" not in err and "internal error" not in err and "Traceback" not in err
    if argv[0] == "run" and "--report" in argv:
        assert (released / argv[argv.index("--report") + 1]).is_file()


def test_closed_stdout_through_a_shell_pipe(released):
    """The line of the issue, as a user types it."""
    exe = Path(sys.executable).with_name("distill")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"'{exe}' history suites/tiny.yaml --format markdown | head -1"],
                          cwd=released, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **OFFLINE})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("|") or proc.stdout.startswith("#"), proc.stdout
    assert proc.stderr == ""
