"""README.md and docs/ run: links resolve, YAML blocks are valid suites, rubrics or workflows,
and the shell blocks of a page run, in order, in a repository laid out as the page assumes.

A block marked ``<!-- skip: REASON -->`` is not run (the summary lists each with its reason);
every other bash block must belong to a page with a scenario below.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docs_scenarios as scenarios
import pytest
import yaml
from docblocks import ROOT, Block, all_blocks, blocks, commands, pages

from harness.spec import load_schema

RUNNABLE = ("bash", "sh", "shell")
YAML = ("yaml", "yml")

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
# Repository files a page names in backticks or in a block: docs pages, scripts, playbooks.
_REPO_PATH = re.compile(r"(?<![\w./-])((?:docs|scripts|\.github)/[\w./@-]*\w)")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --------------------------------------------------------------------------- links


def missing_targets(text: str, folder: Path, root: Path = ROOT) -> list[str]:
    """Relative links (from ``folder``) and repository paths (``docs/…``, ``scripts/…``,
    ``.github/…``, from ``root``, in prose or in a block) that lead nowhere."""
    missing = []
    for m in _LINK.finditer(text):
        target = (m.group(1) or m.group(2)).split("#", 1)[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue  # an anchor on the page, or an https:/mailto: link
        if not (folder / target).exists():
            missing.append(f"link {target}")
    for m in _REPO_PATH.finditer(text):
        name = m.group(1).rstrip(".")
        if any(ch in name for ch in "*<>{}"):
            continue  # a pattern, not a file
        if not (root / name).exists():
            missing.append(f"path {name}")
    return missing


@pytest.mark.parametrize("page", pages(), ids=_rel)
def test_every_link_and_named_file_exists(page: Path) -> None:
    missing = missing_targets(page.read_text(encoding="utf-8"), page.parent)
    assert not missing, f"{_rel(page)} names what does not exist: {missing}"


def test_the_link_check_sees_a_playbook_named_in_a_yaml_block(tmp_path: Path) -> None:
    """Guards the check above with the defect it was written for."""
    (tmp_path / "docs" / "playbooks").mkdir(parents=True)
    (tmp_path / "docs" / "here.md").write_text("x", "utf-8")
    text = ("[ok](here.md) [gone](gone.md) [web](https://example.com) [top](#top)\n"
            "```yaml\n  - {name: vs_launch, playbook: docs/playbooks/slow-drift.md}\n```\n")
    assert missing_targets(text, tmp_path / "docs", tmp_path) == [
        "link gone.md", "path docs/playbooks/slow-drift.md"]


def test_the_readme_sends_users_to_docs_not_to_design() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "DESIGN.md" not in text
    assert "docs/README.md" in text


# --------------------------------------------------------------------------- YAML blocks


def _yaml_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.lang in YAML and b.skip is None]


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its top-level ``required`` dropped: a fragment of a file validates."""
    return {k: v for k, v in schema.items() if k not in ("required", "anyOf", "oneOf")}


def _validate(doc: Any, schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def _is_workflow(doc: Any) -> bool:
    if isinstance(doc, list):
        return bool(doc) and isinstance(doc[0], dict) and ("uses" in doc[0] or "run" in doc[0])
    return isinstance(doc, dict) and bool({"jobs", "on", "with", "uses", "steps"} & set(doc))


@pytest.mark.parametrize("block", _yaml_blocks(), ids=lambda b: b.where)
def test_yaml_block_is_valid(block: Block, tmp_path: Path) -> None:
    """A whole suite or rubric loads as the harness loads it; a fragment (a ``teacher:``, some
    ``criteria``) validates against its part of the schema; a workflow is linted in
    test_actions_docs."""
    from harness.spec import load_rubric

    doc = yaml.safe_load(block.text)
    if _is_workflow(doc):
        return
    suite, rubric = load_schema("suite"), load_schema("rubric")
    criterion = {**rubric["$defs"]["criterion"], "$defs": rubric["$defs"]}
    if isinstance(doc, list):  # rubric criteria
        errors = [e for item in doc for e in _validate(item, criterion)]
    elif isinstance(doc, dict) and set(doc) == {"criteria"}:  # a rubric's criteria, shown alone
        errors = [e for item in doc["criteria"] for e in _validate(item, criterion)]
    elif isinstance(doc, dict) and "criteria" in doc:
        path = tmp_path / "rubric.yaml"
        path.write_text(block.text, "utf-8")
        (tmp_path / "pyproject.toml").write_text("", "utf-8")
        load_rubric(path, tmp_path)  # known metrics, settings: as a suite loads it
        errors = []
    elif isinstance(doc, dict) and set(doc) <= set(suite["properties"]):
        errors = _validate(doc, _partial(suite))
    else:
        pytest.fail(f"{block.where}: a YAML block that is neither a suite, a rubric nor a "
                    f"workflow (keys {sorted(doc) if isinstance(doc, dict) else type(doc)})")
    assert not errors, f"{block.where}: {errors}"


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.lang == "jsonl"],
                         ids=lambda b: b.where)
def test_jsonl_block_lines_are_valid_predictions(block: Block) -> None:
    import json

    schema = load_schema("predictions")
    for line in block.text.splitlines():
        if line.strip():
            assert not _validate(json.loads(line), schema), f"{block.where}: {line}"


# --------------------------------------------------------------------------- pages that run


def _own_models(root: Path, request: pytest.FixtureRequest) -> None:
    scenarios.lay_out_own_models(root, request.getfixturevalue("minilm_pair"))


def _tickets(root: Path, request: pytest.FixtureRequest) -> None:
    scenarios.lay_out_tickets(root)


def _adopter(root: Path, request: pytest.FixtureRequest) -> None:
    scenarios.lay_out_adopter(root)


def _support(root: Path, request: pytest.FixtureRequest) -> None:
    scenarios.lay_out_support(root)


#: Page -> how its repository is laid out before its file blocks are written and its shell
#: blocks run.
SCENARIOS: dict[str, Callable[[Path, pytest.FixtureRequest], None]] = {
    "README.md": _own_models,
    "docs/history.md": _tickets,
    "docs/cli.md": _tickets,
    "docs/github-actions.md": _adopter,
    "docs/endpoints.md": _support,
}


def _run(cmd: str, root: Path, env: dict[str, str], where: str) -> str:
    proc = subprocess.run(["bash", "-c", cmd], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    ok = {0} if cmd.startswith(("git ", "cd ", "actionlint ")) else {0, 1}  # 1: a gate that fails
    assert proc.returncode in ok, f"{where}: `{cmd}` exited {proc.returncode}:\n{out[-3000:]}"
    for bad in ("Traceback", "internal error"):
        assert bad not in out, f"{where}: `{cmd}`:\n{out[-3000:]}"
    return out


@pytest.mark.parametrize("page", [
    pytest.param(page, marks=pytest.mark.e2e) if page == "README.md" else page  # real MiniLM
    for page in sorted(SCENARIOS)])
def test_page_runs(page: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root = scenarios.new_repo(tmp_path / "repo")
    SCENARIOS[page](root, request)
    env = scenarios.scenario_env(tmp_path)
    page_blocks = [b for b in blocks(ROOT / page) if b.skip is None]
    tests = []
    for block in page_blocks:
        if block.file is not None:
            target = root / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            if block.lang == "python" and target.name.startswith("test_"):
                tests.append(block.file)
    ran = 0
    for block in page_blocks:
        if block.lang in RUNNABLE:
            for cmd in commands(block):
                _run(cmd, root, env, block.where)
                ran += 1
    assert ran, f"{page}: no shell command ran"
    for test in tests:  # a test file the page shows, run by pytest as the user would
        junit = tmp_path / "junit.xml"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               test, f"--junitxml={junit}"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        report = junit.read_text("utf-8") if junit.exists() else ""
        # It may fail on these untrained models' numbers, but only by its own assertion.
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        assert 'errors="0"' in report, proc.stdout
        for failure in re.findall(r'<failure message="([^"]*)"', report):
            assert failure.startswith(("assert", "AssertionError")), proc.stdout


def test_a_command_that_exits_2_fails_its_page(tmp_path: Path) -> None:
    """Guards the runner: bad input (exit 2) in a documented command is a failure, a gate that
    fails (exit 1) is not."""
    root = scenarios.new_repo(tmp_path / "repo")
    scenarios.lay_out_tickets(root)
    env = scenarios.scenario_env(tmp_path)
    _run("distill run suites/tickets.yaml --no-cache --quiet", root, env, "guard")
    with pytest.raises(AssertionError, match="exited 2"):
        _run("distill validate suites/nope.yaml", root, env, "guard")


def test_every_shell_block_runs_or_says_why() -> None:
    """Each bash block belongs to a page that runs, or is marked skip with a reason; the
    reasons are listed in the terminal summary (conftest.py)."""
    skipped, orphans = [], []
    for block in all_blocks():
        if block.lang not in (*RUNNABLE, *YAML, "python"):
            continue
        if block.skip is not None:
            assert block.skip.strip(), f"{block.where}: a skip needs a reason"
            skipped.append(f"{block.where} [{block.lang}]: {block.skip}")
        elif block.lang in RUNNABLE and _rel(block.page) not in SCENARIOS:
            orphans.append(block.where)
        elif block.lang == "python" and block.file is None:
            orphans.append(block.where)
    assert not orphans, f"blocks that neither run nor say why: {orphans}"
