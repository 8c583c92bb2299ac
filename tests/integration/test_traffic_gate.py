"""Traffic through ``pytest --distill-suite``: a language the suite never saw, where the student
stops agreeing with the teacher, fails exactly the traffic pocket check and is reported as drift.

The repository is written here on fixed, chosen rows: 200 eval examples (English and German)
on which student and teacher agree, and 600 traffic rows of which the last 60 are Spanish — a
value the eval data has none of — and the student gives the teacher's other label on 45 of
those 60. Overall traffic agreement (0.925) stays within the rubric's margin, the declared
``short`` slice holds no Spanish row, so only the pocket search on the traffic rows finds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

N_EVAL, N_TRAFFIC, N_ES, N_FLIPPED = 200, 600, 60, 45

SUITE = """\
schema_version: 1
name: shop
version: "1"
task: classification
data:
  path: ../data/eval.jsonl
  id: id
  input: text
  label: label
  features: [lang, n_words]
traffic_data:
  path: ../data/traffic.jsonl
  id: id
  input: text
  features: [lang, n_words]
labels: [pos, neg]
teacher: {type: predictions, path: ../data/teacher.jsonl}
student: {type: predictions, path: ../data/student.jsonl}
rubric: ../rubrics/shop.yaml
slices:
  - name: short
    where: {n_words: {lt: 8}}
"""

RUBRIC = """\
schema_version: 1
id: shop-gate
version: 1
defaults: {min_support: 10}
criteria:
  - {name: quality_ratio, metric: accuracy, compare: teacher_ratio, min: 0.9, scope: overall}
  - {name: traffic_agreement, metric: agreement, compare: teacher_delta, min: -0.1, scope: traffic}
"""

WORDS = {"en": "the parcel arrived late and the box was", "de": "das paket kam spät an und war",
         "es": "el paquete llegó tarde y la caja estaba"}


def _row(ex_id: str, lang: str, n_words: int) -> dict[str, object]:
    base = WORDS[lang].split()
    text = " ".join(base[i % len(base)] for i in range(n_words))
    return {"id": ex_id, "lang": lang, "n_words": n_words, "text": text}


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def _prediction(ex_id: str, label: str) -> dict[str, object]:
    other = "neg" if label == "pos" else "pos"
    return {"id": ex_id, "label": label, "scores": {label: 0.8, other: 0.2}}


@pytest.fixture
def shop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    root = pytester.path
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
    for folder in ("suites", "rubrics", "data"):
        (root / folder).mkdir()
    (root / "suites" / "shop.yaml").write_text(SUITE)
    (root / "rubrics" / "shop.yaml").write_text(RUBRIC)

    eval_rows = [_row(f"e{i:03d}", ("en", "de")[i % 2], 3 + i % 12) for i in range(N_EVAL)]
    labels = ["pos" if i % 3 else "neg" for i in range(N_EVAL)]
    _write_jsonl(root / "data" / "eval.jsonl",
                 [{**r, "label": lab} for r, lab in zip(eval_rows, labels, strict=True)])
    traffic = [_row(f"t{i:03d}", ("en", "de")[i % 2], 3 + i % 12) for i in range(N_TRAFFIC - N_ES)]
    traffic += [_row(f"t{i:03d}", "es", 8 + i % 6) for i in range(N_TRAFFIC - N_ES, N_TRAFFIC)]
    _write_jsonl(root / "data" / "traffic.jsonl", traffic)

    teacher, student = [], []
    for r, lab in zip(eval_rows, labels, strict=True):
        teacher.append(_prediction(str(r["id"]), lab))
        student.append(_prediction(str(r["id"]), lab))
    flipped = 0
    for i, r in enumerate(traffic):
        lab = "pos" if i % 3 else "neg"
        teacher.append(_prediction(str(r["id"]), lab))
        if r["lang"] == "es" and flipped < N_FLIPPED and i % 4 != 0:
            flipped += 1
            lab = "neg" if lab == "pos" else "pos"
        student.append(_prediction(str(r["id"]), lab))
    assert flipped == N_FLIPPED
    _write_jsonl(root / "data" / "teacher.jsonl", teacher)
    _write_jsonl(root / "data" / "student.jsonl", student)
    return root


def test_a_new_language_where_the_student_disagrees_fails_exactly_the_traffic_pocket_check(
    pytester: pytest.Pytester, shop: Path
) -> None:
    report_path = shop / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "--distill-suite", "suites/shop.yaml",
                                "--distill-no-cache", "--distill-report", str(report_path), "-rA")
    assert result.ret == 1, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*FAILED suites/shop.yaml::traffic_agreement[[]traffic:discovered[]]*"])

    doc = json.loads(report_path.read_text())
    from harness.spec import validate_document

    validate_document(doc, "report", report_path)  # the traffic block keeps to the schema
    suite = doc["suites"][0]
    verdicts = {c["id"].split("::", 1)[1]: c["verdict"] for c in suite["checks"]}
    assert verdicts == {
        "quality_ratio[overall]": "pass",
        "traffic_agreement[traffic]": "pass",
        "traffic_agreement[traffic:short]": "pass",
        "traffic_agreement[traffic:discovered]": "fail",
    }

    traffic = suite["traffic"]
    assert traffic["n"] == N_TRAFFIC and traffic["metric"] == "agreement"
    assert traffic["agreement"] == pytest.approx(1 - N_FLIPPED / N_TRAFFIC)
    unseen = [d for d in traffic["drift"] if d["kind"] == "unseen"]
    assert [(d["feature"], d["value"], d["share"], d["n"]) for d in unseen] == [
        ("lang", "es", N_ES / N_TRAFFIC, N_ES)]
    assert unseen[0]["detail"].startswith("10% of traffic is lang=es (60 of 600 rows); the suite has none")
    assert {d["feature"] for d in traffic["features"]} == {"lang", "n_words"}

    confirmed = [p for p in traffic["pockets"] if p["confirmed"]]
    assert [p["slice"] for p in confirmed][:1] == ["lang=es"]
    assert confirmed[0]["student"] == pytest.approx(1 - N_FLIPPED / N_ES)

    drift_gaps = [g for g in suite["coverage_gaps"] if g["kind"] == "drift"]
    assert ("lang=es", N_ES) in {(g["slice"], g["n"]) for g in drift_gaps}

    out = result.stdout.str()
    assert "traffic: 600 rows" in out and "lang=es" in out


def test_agreement_as_a_value_finds_the_same_traffic_pocket(
    pytester: pytest.Pytester, shop: Path
) -> None:
    """``agreement >= 0.9`` (compare: value) in a pocket is ``student - teacher >= -0.1``."""
    rubric = shop / "rubrics" / "shop.yaml"
    rubric.write_text(rubric.read_text("utf-8").replace(
        "metric: agreement, compare: teacher_delta, min: -0.1",
        "metric: agreement, compare: value, min: 0.9"), "utf-8")
    report_path = shop / "report.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "--distill-suite", "suites/shop.yaml",
                                "--distill-no-cache", "--distill-report", str(report_path))
    assert result.ret == 1, result.stdout.str()
    suite = json.loads(report_path.read_text())["suites"][0]
    pocket = next(c for c in suite["checks"] if c["slice"] == "traffic:discovered")
    assert pocket["verdict"] == "fail"
    assert pocket["value"] == pytest.approx(1 - N_FLIPPED / N_ES)  # the pocket's agreement
    assert pocket["pockets"][0]["slice"] == "lang=es"
