"""spec.py: suites and rubrics, their schemas, paths, and the errors that name file and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.models import load_model
from harness.paths import find_root
from harness.spec import (
    detect_kind,
    field_path,
    load_rubric,
    load_suite,
    suite_files,
    validate_file,
)
from harness.spec_types import (
    CoverageSettings,
    DiscoverySpec,
    EconomicsSettings,
    SliceSpec,
    TokenPrices,
    TrainingFacts,
)

TINY = Path(__file__).resolve().parents[1] / "data" / "tinyrepo"


@pytest.fixture
def repo(tiny_copy: Path) -> Path:
    """A copy of the tiny repository; the working directory, so messages show relative paths."""
    return tiny_copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), "utf-8")


def spec_error(fn, *args) -> str:
    with pytest.raises(SpecError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message, "a SpecError is one line"
    return message


# --------------------------------------------------------------------------- good files

def test_load_suite_resolves_everything(repo):
    suite = load_suite(repo / "suites" / "tiny.yaml")
    assert suite.name == "tiny" and suite.version == "1" and suite.task == "classification"
    assert suite.root == repo.resolve()
    assert suite.labels == ("pos", "neg")
    assert suite.data.path == (repo / "data" / "eval.jsonl").resolve()
    assert suite.data.input == ("text",) and suite.data.label == "label"
    assert suite.data.features == ("lang", "has_negation", "n_words", "channel")
    assert suite.teacher.type == "predictions"
    assert suite.teacher.local_path == (repo / "data" / "teacher.jsonl").resolve()
    assert list(suite.students) == ["student"]
    assert suite.baseline_path == repo.resolve() / "baselines" / "tiny.json"
    assert suite.rubric.id == "tiny-gate" and suite.rubric.version == 1
    names = [c.name for c in suite.rubric.criteria]
    assert names == ["quality_ratio", "slice_gap", "flips"]
    flips = suite.rubric.criteria[2]
    assert (flips.metric, flips.compare, flips.max, flips.min) == ("negative_flip_rate", "value", 0.5, None)
    # defaults flow into every criterion
    assert all(c.min_support == 3 and c.decision == "point" for c in suite.rubric.criteria)
    assert flips.severity == "fail" and flips.alpha == 0.05
    # the CI's level defaults to 1 - 2 alpha: the interval of the one-sided test at alpha
    assert flips.confidence == pytest.approx(0.90)
    assert suite.rubric.notes == ()
    assert [c.line for c in suite.rubric.criteria] == [6, 7, 8]


def test_every_setting_is_typed_when_the_suite_loads(repo):
    path = repo / "suites" / "tiny.yaml"
    edit(path, "  - by: lang\n", "  - by: lang\n    owner: '@org/de'\n    playbook: docs/de.md\n")
    edit(path, "  path: ../data/student.jsonl", "  path: ../data/student.jsonl\n  metadata: "
         "{training: {gpu_hours: 3.5, usd: 14}, usd_per_million_tokens: {output: 2}}")
    path.write_text(path.read_text("utf-8") + "coverage: {embeddings: teacher, quantile: 0.9}\n"
                    "discovery: {n_bins: 6, enabled: false}\neconomics: {usd_per_hour: 2}\n",
                    "utf-8")
    suite = load_suite(path)
    by_lang, by_neg, short = suite.slices
    assert by_lang == SliceSpec(name=None, where={}, field="slices[0]", owner="@org/de",
                                playbook="docs/de.md", by=("lang",))
    assert by_lang.is_by and by_neg.is_by and by_neg.owner is None
    assert not short.is_by and short.name == "short" and short.where == {"n_words": {"lt": 5}}
    assert suite.coverage == CoverageSettings(embeddings="teacher", quantile=0.9)
    assert suite.discovery.n_bins == 6 and not suite.discovery.enabled
    assert suite.economics == EconomicsSettings(teacher_usd_per_hour=2.0, student_usd_per_hour=2.0)
    assert suite.student.training == TrainingFacts(gpu_hours=3.5, usd=14.0)
    assert suite.student.prices == TokenPrices(input=0.0, output=2.0)
    assert suite.teacher.prices is None and suite.teacher.training == TrainingFacts()


def test_a_suite_without_settings_gets_the_defaults(repo):
    suite = load_suite(repo / "suites" / "tiny.yaml")
    assert suite.economics is None  # no section: nothing asks for timing
    assert suite.coverage == CoverageSettings() and suite.discovery == DiscoverySpec()


def test_suite_in_json_is_loaded_like_yaml(repo):
    import yaml

    doc = yaml.safe_load((repo / "suites" / "tiny.yaml").read_text("utf-8"))
    (repo / "suites" / "tiny.json").write_text(json.dumps(doc), "utf-8")
    assert load_suite(repo / "suites" / "tiny.json").name == "tiny"


def test_find_root_is_the_nearest_folder_with_pyproject(repo):
    assert find_root(repo / "suites" / "tiny.yaml") == repo.resolve()
    assert find_root(repo / "data") == repo.resolve()


def test_field_path():
    assert field_path(["criteria", 2, "compare"]) == "criteria[2].compare"
    assert field_path([3, "x"]) == "[3].x"
    assert field_path([]) == ""


def test_suite_files_of_a_folder(repo):
    (repo / "suites" / "nested").mkdir()
    (repo / "suites" / "nested" / "suite.yaml").write_text("x: 1\n", "utf-8")
    (repo / "suites" / "README.md").write_text("not a suite\n", "utf-8")
    found = suite_files(repo / "suites")
    assert [p.relative_to(repo.resolve()).as_posix() for p in found] == [
        "suites/nested/suite.yaml", "suites/tiny.yaml"]
    assert suite_files(repo / "suites" / "tiny.yaml") == [(repo / "suites" / "tiny.yaml").resolve()]
    assert spec_error(suite_files, repo / "nope") == "nope: no such suite file or folder"


def test_confidence_follows_alpha_and_another_level_gets_a_note(repo):
    rubric = repo / "rubrics" / "tiny.yaml"
    edit(rubric, "decision: point}", "decision: significant, alpha: 0.025}")
    loaded = load_rubric(rubric)
    assert [c.confidence for c in loaded.criteria] == pytest.approx([0.95] * 3)
    assert loaded.notes == ()
    edit(rubric, "alpha: 0.025}", "alpha: 0.05, confidence: 0.95}")
    edit(rubric, "scope: overall}\n  - {name: slice_gap", "scope: overall, decision: point}\n"
         "  - {name: slice_gap")
    loaded = load_rubric(rubric)
    assert {c.confidence for c in loaded.criteria} == {0.95}
    # one note for the two criteria whose verdict is a test (quality_ratio decides by point)
    assert loaded.notes == (
        "rubrics/tiny.yaml: confidence 0.95 with alpha 0.05 (slice_gap, flips): the printed "
        "interval is not the one the verdict uses (the one-sided test at alpha 0.05 is the 90% "
        "interval's); leave confidence out to print that one",)
    edit(rubric, "alpha: 0.05, confidence: 0.95}", "alpha: 0.5}")
    assert spec_error(load_rubric, rubric) == (
        "rubrics/tiny.yaml: criteria[0].alpha: alpha 0.5 leaves no interval at the default "
        "confidence 1 - 2 alpha; use an alpha below 0.5 or set confidence")


# --------------------------------------------------------------------------- malformed files

def test_malformed_yaml(repo):
    (repo / "rubrics" / "tiny.yaml").write_text("schema_version: 1\ncriteria: [a, b\n", "utf-8")
    msg = spec_error(load_rubric, repo / "rubrics" / "tiny.yaml")
    assert msg.startswith("rubrics/tiny.yaml: invalid YAML at line 3, column 1:")


def test_malformed_json(repo):
    (repo / "suites" / "tiny.json").write_text('{"name": "x",}', "utf-8")
    msg = spec_error(load_suite, repo / "suites" / "tiny.json")
    assert msg.startswith("suites/tiny.json: invalid JSON at line 1, column 14:")


def test_yaml_python_tags_are_refused(repo):
    (repo / "rubrics" / "tiny.yaml").write_text(
        "schema_version: 1\nid: !!python/object/apply:os.system ['true']\n", "utf-8")
    msg = spec_error(load_rubric, repo / "rubrics" / "tiny.yaml")
    assert msg.startswith("rubrics/tiny.yaml: invalid YAML at line 2")


def test_a_document_that_is_not_a_mapping(repo):
    (repo / "rubrics" / "tiny.yaml").write_text("- just\n- a list\n", "utf-8")
    msg = spec_error(load_rubric, repo / "rubrics" / "tiny.yaml")
    assert msg == "rubrics/tiny.yaml: (top level): expected object, got ['just', 'a list']"


def test_missing_suite_file(repo):
    assert spec_error(load_suite, repo / "suites" / "nope.yaml") == "suites/nope.yaml: file not found"


# --------------------------------------------------------------------------- one bad edit, one line

SUITE, RUBRIC = "suites/tiny.yaml", "rubrics/tiny.yaml"

#: (file edited, text replaced, replacement, expected message; one ending in "..." is a prefix).
#: The file loaded is the edited one: a rubric alone, or the suite (and its rubric).
BAD_EDITS = [
    # schema violations
    pytest.param(RUBRIC, "compare: value", "compare: teacher_ration",
                 "rubrics/tiny.yaml: criteria[2].compare: 'teacher_ration' is not one of value, "
                 "teacher_ratio, teacher_delta, baseline_delta, baseline_ratio",
                 id="unknown compare mode: the choices"),
    pytest.param(RUBRIC, "scope: slices", "scope: slice",
                 "rubrics/tiny.yaml: criteria[1].scope: 'slice' is not one of overall, slices, "
                 "all, discovered, traffic", id="unknown scope"),
    pytest.param(RUBRIC, "metric: accuracy, compare: teacher_ratio, ", "compare: teacher_ratio, ",
                 "rubrics/tiny.yaml: criteria[0].metric: required field is missing",
                 id="required field missing"),
    pytest.param(RUBRIC, "max: 0.5, ", "",
                 "rubrics/tiny.yaml: criteria[2]: needs min or max",
                 id="criterion without min or max (not 'min: required')"),
    pytest.param(SUITE, "  label: label\n", "  lable: label\n",
                 "suites/tiny.yaml: data.lable: unknown field (did you mean 'label'?); "
                 "expected one of ...", id="unknown field: did you mean"),
    pytest.param(RUBRIC, "max: 0.5", "max: half",
                 "rubrics/tiny.yaml: criteria[2].max: expected number, got 'half'", id="wrong type"),
    pytest.param(SUITE, "name: tiny", "name: Tiny Suite",
                 "suites/tiny.yaml: name: 'Tiny Suite' does not match ^[a-z0-9_-]+$",
                 id="suite name pattern"),
    pytest.param(SUITE, "{n_words: {lt: 5}}", "{n_words: {less: 5}}",
                 "suites/tiny.yaml: slices[2].where.n_words.less: unknown field; expected one "
                 "of eq, gt, gte, in, lt, lte, ne, not_in, regex", id="where operator"),
    pytest.param(SUITE, "    where: {n_words: {lt: 5}}\n", "",
                 "suites/tiny.yaml: slices[2].where: required field is missing",
                 id="named slice without where"),
    pytest.param(SUITE, "student:\n  type: predictions\n  path: ../data/student.jsonl\n", "",
                 "suites/tiny.yaml: (top level): needs student or students",
                 id="suite without a student"),
    pytest.param(RUBRIC, "schema_version: 1", "schema_version: 2",
                 "rubrics/tiny.yaml: schema_version: 2 is not supported (expected 1)",
                 id="schema_version must be 1"),
    pytest.param(SUITE, "  type: predictions\n  path: ../data/student.jsonl", "  type: callable",
                 "suites/tiny.yaml: student.target: required field is missing",
                 id="callable model needs a target"),
    # semantic checks
    pytest.param(RUBRIC, "name: flips", "name: slice_gap",
                 "rubrics/tiny.yaml: criteria[2].name: duplicate criterion name 'slice_gap'",
                 id="duplicate criterion name"),
    pytest.param(RUBRIC, "max: 0.5", "max: 0.5, min: 0.9",
                 "rubrics/tiny.yaml: criteria[2]: min 0.9 is above max 0.5", id="min above max"),
    pytest.param(RUBRIC, "metric: negative_flip_rate, compare: value",
                 "metric: size_reduction, compare: teacher_ratio",
                 "rubrics/tiny.yaml: criteria[2]: metric 'size_reduction' is a run-level...",
                 id="run-level metric takes value, overall"),
    pytest.param(RUBRIC,
                 "{name: flips, metric: negative_flip_rate, compare: value, max: 0.5, "
                 "scope: overall}",
                 "{name: f1, metric: macro_f1, compare: teacher_delta, min: -0.1, "
                 "scope: discovered}",
                 "rubrics/tiny.yaml: criteria[2].scope: scope: discovered needs a metric...",
                 id="discovered scope needs per-example values"),
    pytest.param(SUITE, "labels: [pos, neg]\n", "",
                 "suites/tiny.yaml: labels: a classification suite needs its label set",
                 id="classification suite needs labels"),
    pytest.param(SUITE, "name: short", "name: overall",
                 "suites/tiny.yaml: slices[2].name: slice name 'overall' is reserved or used twice",
                 id="reserved slice name"),
    pytest.param(SUITE, "{n_words: {lt: 5}}", "{lang: {regex: '(de'}}",
                 "suites/tiny.yaml: slices[2].where.lang.regex: invalid regex '(de'...",
                 id="invalid regex in where"),
    pytest.param(SUITE, "  - by: lang\n", "  - by: lang\n    where: {lang: {regex: '(de'}}\n",
                 "suites/tiny.yaml: slices[0].where.lang.regex: invalid regex '(de'...",
                 id="invalid regex in a by: slice's where"),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), BAD_EDITS)
def test_a_bad_edit_is_one_line_naming_the_file_the_field_and_what_was_expected(
        repo, file, old, new, expected):
    edit(repo / file, old, new)
    msg = spec_error(load_suite if file == SUITE else load_rubric, repo / file)
    if expected.endswith("..."):
        assert msg.startswith(expected[:-3])
    else:
        assert msg == expected


# --------------------------------------------------------------------------- metrics

def test_unknown_metric_lists_known_ones_with_did_you_mean(repo):
    edit(repo / "rubrics" / "tiny.yaml", "metric: negative_flip_rate", "metric: negativ_flip_rate")
    msg = spec_error(load_rubric, repo / "rubrics" / "tiny.yaml")
    assert msg.startswith("rubrics/tiny.yaml: criteria[2].metric: unknown metric "
                          "'negativ_flip_rate' (did you mean 'negative_flip_rate'?); known metrics: ")
    for known in ("accuracy", "macro_f1", "agreement", "positive_flip_rate", "kl_divergence", "ece"):
        assert known in msg
    assert "evaluate:<module>" in msg


def test_unknown_metric_without_a_close_match(repo):
    edit(repo / "rubrics" / "tiny.yaml", "metric: negative_flip_rate", "metric: perplexity")
    msg = spec_error(load_rubric, repo / "rubrics" / "tiny.yaml")
    assert "unknown metric 'perplexity'; known metrics: accuracy, " in msg


def test_a_metric_of_the_other_task_is_refused_when_the_suite_loads(repo):
    edit(repo / "rubrics" / "tiny.yaml", "metric: negative_flip_rate", "metric: bleu")
    load_rubric(repo / "rubrics" / "tiny.yaml")  # alone, a rubric does not know its task
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith("rubrics/tiny.yaml: criteria[2].metric: criterion 'flips': bleu is a "
                          "generation metric; a classification suite takes: accuracy, agreement, ")
    assert "exact_match" not in msg and "macro_f1" in msg


def test_traffic_scope_in_a_suite_without_traffic_data_names_the_criterion(repo):
    edit(repo / "rubrics" / "tiny.yaml",
         "{name: flips, metric: negative_flip_rate, compare: value, max: 0.5, scope: overall}",
         "{name: live, metric: agreement, compare: value, min: 0.9, scope: traffic}")
    load_rubric(repo / "rubrics" / "tiny.yaml")  # the rubric alone is fine
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith("rubrics/tiny.yaml: criteria[2].scope: criterion 'live' has scope: "
                          "traffic, but the suite suites/tiny.yaml declares no traffic_data")


# --------------------------------------------------------------------------- paths

@pytest.mark.parametrize(("old", "new", "field"), [
    ("rubric: ../rubrics/tiny.yaml", "rubric: ../../rubrics/tiny.yaml", "rubric"),
    ("path: ../data/eval.jsonl", "path: ../../../etc/passwd", "data.path"),
    ("path: ../data/teacher.jsonl", "path: /etc/hostname", "teacher.path"),
    ("rubric: ../rubrics/tiny.yaml", "rubric: ../rubrics/tiny.yaml\nbaseline: ../../b.json",
     "baseline"),
])
def test_a_path_that_leaves_the_repository_is_refused(repo, old, new, field):
    edit(repo / "suites" / "tiny.yaml", old, new)
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith(f"suites/tiny.yaml: {field}: path ")
    assert "leaves the repository root" in msg


def test_a_symlink_out_of_the_repository_is_refused(repo, tmp_path):
    outside = tmp_path / "outside.jsonl"
    shutil.copyfile(repo / "data" / "eval.jsonl", outside)
    (repo / "data" / "link.jsonl").symlink_to(outside)
    edit(repo / "suites" / "tiny.yaml", "path: ../data/eval.jsonl", "path: ../data/link.jsonl")
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith("suites/tiny.yaml: data.path: path '../data/link.jsonl' leaves")


def test_a_model_outside_the_repository_is_named_by_path_env(repo, tmp_path, monkeypatch):
    volume = tmp_path / "volume"
    volume.mkdir()
    shutil.copyfile(repo / "data" / "teacher.jsonl", volume / "teacher.jsonl")
    monkeypatch.setenv("TEACHER_PREDS", str(volume / "teacher.jsonl"))
    in_repo = load_suite(repo / "suites" / "tiny.yaml").teacher
    edit(repo / "suites" / "tiny.yaml", "  path: ../data/teacher.jsonl",
         "  path_env: TEACHER_PREDS")
    teacher = load_suite(repo / "suites" / "tiny.yaml").teacher
    assert (teacher.path, teacher.path_env) == (None, "TEACHER_PREDS")
    assert teacher.local_path == (volume / "teacher.jsonl").resolve()
    # The files are hashed, not their location: the same file anywhere is the same model.
    assert (load_model(teacher, "teacher").fingerprint()
            == load_model(in_repo, "teacher").fingerprint())


@pytest.mark.parametrize(("new", "expected"), [
    ("  path_env: TEACHER_PREDS", "suites/tiny.yaml: teacher.path_env: environment variable "
     "TEACHER_PREDS is not set; it must hold the model's file"),
    ("  path_env: NOT_A_FILE", "suites/tiny.yaml: teacher.path_env: NOT_A_FILE='/': no such file"),
    ("  path: ../data/teacher.jsonl\n  path_env: NOT_A_FILE",
     "suites/tiny.yaml: teacher.path_env: give path or path_env, not both"),
    ("  revision: x", "suites/tiny.yaml: teacher: needs path or path_env"),
    ("  path_env: 1bad", "suites/tiny.yaml: teacher.path_env: '1bad' does not match "
     "^[A-Za-z_][A-Za-z0-9_]*$"),
])
def test_bad_path_env(repo, monkeypatch, new, expected):
    monkeypatch.delenv("TEACHER_PREDS", raising=False)
    monkeypatch.setenv("NOT_A_FILE", "/")
    edit(repo / "suites" / "tiny.yaml", "  path: ../data/teacher.jsonl", new)
    assert spec_error(load_suite, repo / "suites" / "tiny.yaml") == expected


def test_a_model_path_leaving_the_repository_names_path_env(repo, tmp_path):
    outside = tmp_path / "teacher.jsonl"
    shutil.copyfile(repo / "data" / "teacher.jsonl", outside)
    (repo / "data" / "link.jsonl").symlink_to(outside)
    for path in (str(outside), "../data/link.jsonl"):
        edit(repo / "suites" / "tiny.yaml", "  path: ../data/teacher.jsonl", f"  path: {path}")
        msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
        assert msg.startswith(f"suites/tiny.yaml: teacher.path: path {path!r} leaves the "
                              "repository root")
        assert msg.endswith("is named by path_env: the name of an environment variable "
                            "holding its location")
        edit(repo / "suites" / "tiny.yaml", f"  path: {path}", "  path: ../data/teacher.jsonl")


def test_missing_data_file(repo):
    (repo / "data" / "eval.jsonl").unlink()
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg == ("suites/tiny.yaml: data.path: '../data/eval.jsonl' not found (resolved to "
                   "data/eval.jsonl)")


def test_missing_predictions_file(repo):
    (repo / "data" / "student.jsonl").unlink()
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith("suites/tiny.yaml: student.path: file '../data/student.jsonl' not found")


def test_missing_rubric_file(repo):
    (repo / "rubrics" / "tiny.yaml").unlink()
    msg = spec_error(load_suite, repo / "suites" / "tiny.yaml")
    assert msg.startswith("suites/tiny.yaml: rubric: '../rubrics/tiny.yaml' not found")


# --------------------------------------------------------------------------- validate any file

def test_detect_kind(tmp_path):
    p = tmp_path / "x.yaml"
    assert detect_kind({"criteria": []}, p) == "rubric"
    assert detect_kind({"suites": [], "harness_version": "0"}, p) == "report"
    assert detect_kind({"task": "classification"}, p) == "suite"
    assert detect_kind({}, tmp_path / "p.jsonl") == "predictions"
    with pytest.raises(SpecError, match="cannot tell what this file is"):
        detect_kind({"hello": 1}, p)


def test_validate_file_good_files(repo):
    assert validate_file(repo / "suites" / "tiny.yaml") == "suite"
    assert validate_file(repo / "rubrics" / "tiny.yaml") == "rubric"
    assert validate_file(repo / "data" / "teacher.jsonl") == "predictions"


def test_validate_file_bad_predictions_line(repo):
    path = repo / "data" / "teacher.jsonl"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines[4] = '{"label": "pos"}\n'
    path.write_text("".join(lines), "utf-8")
    msg = spec_error(validate_file, path)
    assert msg == "data/teacher.jsonl: line 5: id: required field is missing"


def test_validate_file_predictions_line_not_json(repo):
    path = repo / "data" / "teacher.jsonl"
    path.write_text('{"id": "e00", "label": "pos"}\n{oops\n', "utf-8")
    msg = spec_error(validate_file, path)
    assert msg.startswith("data/teacher.jsonl: line 2: invalid JSON")


def test_a_bad_economics_section_is_an_error_when_the_suite_loads(repo):
    path = repo / "suites" / "tiny.yaml"
    path.write_text(path.read_text("utf-8") + "economics: {usd_per_hour: {student: -3}}\n",
                    "utf-8")
    msg = spec_error(load_suite, path)
    assert msg.startswith("suites/tiny.yaml: economics.usd_per_hour.student: ")


def test_bad_training_facts_and_token_prices_are_errors_when_the_suite_loads(repo):
    path = repo / "suites" / "tiny.yaml"
    text = path.read_text("utf-8")
    edit(path, "  path: ../data/student.jsonl", "  path: ../data/student.jsonl\n"
         "  metadata: {training: {gpu_hours: -1}}")
    assert spec_error(load_suite, path).startswith(
        "suites/tiny.yaml: student.metadata.training.gpu_hours: ")
    path.write_text(text, "utf-8")
    edit(path, "  path: ../data/teacher.jsonl", "  path: ../data/teacher.jsonl\n"
         "  metadata: {usd_per_million_tokens: {input: cheap}}")
    assert spec_error(load_suite, path).startswith(
        "suites/tiny.yaml: teacher.metadata.usd_per_million_tokens.input: ")
