"""Bad judge settings fail when the suite loads, naming the file, the field and what was
expected — before any model runs."""

from __future__ import annotations

import pytest
import yaml
from test_judge_gate import write_repo

from harness.errors import SpecError
from harness.spec import load_suite


def _edit(root, change) -> None:
    path = root / "suites" / "chat.yaml"
    doc = yaml.safe_load(path.read_text("utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")


def _judge(doc):
    return doc["judges"]["helpful"]


CASES = [
    ("missing prompt file", lambda d: _judge(d).update(prompt="../rubrics/judges/nope.md"),
     "judges.helpful.prompt", "'../rubrics/judges/nope.md' not found"),
    ("bad verdict regex", lambda d: _judge(d).update(verdict="[[(A|B"),
     "judges.helpful.verdict", "invalid verdict pattern"),
    ("two groups", lambda d: _judge(d).update(verdict=r"(\[\[)(A|B|C)\]\]"),
     "judges.helpful.verdict", "has 2 groups"),
    ("scale upside down", lambda d: _judge(d).update(mode="pointwise", scale={"min": 5, "max": 1}),
     "judges.helpful.scale", "scale min 5 must be below max 1"),
    ("pairwise prompt in pointwise mode", lambda d: _judge(d).update(mode="pointwise"),
     "judges.helpful.prompt", "placeholder {answer_a}"),
    ("labels of an unknown judge", lambda d: d.update(judge_labels={"kind": "human_pref"}),
     "judge_labels.kind", "not a judge of this suite"),
    ("unknown key", lambda d: _judge(d).update(swapp=True),
     "judges.helpful", "swapp"),
    ("bad judge name", lambda d: d["judges"].update({"Bad Name": _judge(d)}),
     "judges", "Bad Name"),
]


@pytest.mark.parametrize(("change", "field", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_judge_settings_are_spec_errors(tmp_path, change, field, message):
    write_repo(tmp_path)
    _edit(tmp_path, change)
    with pytest.raises(SpecError) as err:
        load_suite(tmp_path / "suites" / "chat.yaml")
    text = str(err.value)
    assert "chat.yaml" in text and field in text and message in text, text


def test_a_reference_placeholder_needs_a_reference_field(tmp_path):
    write_repo(tmp_path)
    prompt = tmp_path / "rubrics" / "judges" / "helpful.md"
    prompt.write_text(prompt.read_text("utf-8") + "\nReference: {reference}\n", "utf-8")
    with pytest.raises(SpecError, match=r"\{reference\} needs data.label"):
        load_suite(tmp_path / "suites" / "chat.yaml")


def test_judges_need_a_generation_suite(tmp_path):
    write_repo(tmp_path)
    (tmp_path / "rubrics" / "chat.yaml").write_text(yaml.safe_dump(
        {"schema_version": 1, "id": "c", "version": 1, "criteria": [
            {"name": "agree", "metric": "agreement", "compare": "value", "min": 0.5}]}), "utf-8")
    _edit(tmp_path, lambda d: d.update(task="classification", labels=["a", "b"]))
    with pytest.raises(SpecError, match="judges grade open-ended answers"):
        load_suite(tmp_path / "suites" / "chat.yaml")
