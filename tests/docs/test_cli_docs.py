"""docs/cli.md names every flag of both front ends: the pytest plugin's options and each
``distill`` subcommand's, read from the parsers themselves."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from harness import cli

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[f"{prefix}{name}"] = sub
                out.update(_subparsers(sub, f"{prefix}{name} "))
    return out


@pytest.mark.parametrize("command", sorted(_subparsers(cli._parser())))
def test_every_distill_option_is_documented(command: str) -> None:
    sub = _subparsers(cli._parser())[command]
    assert f"distill {command}" in PAGE
    for action in sub._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in PAGE, f"docs/cli.md: `distill {command}` lacks {flag}"


@pytest.mark.parametrize("page", ["docs/cli.md", "README.md"])
def test_every_pytest_flag_is_documented(page: str) -> None:
    source = (ROOT / "harness" / "plugin.py").read_text(encoding="utf-8")
    flags = set(re.findall(r'addoption\(\s*"(--distill-[a-z-]+)"', source))
    assert flags, "no --distill- options found in harness/plugin.py"
    text = (ROOT / page).read_text(encoding="utf-8")
    missing = sorted(f for f in flags if f"`{f}" not in text)
    assert not missing, f"{page} lacks {missing}"


def test_exit_codes_are_the_clis() -> None:
    for code in (cli.EXIT_PASS, cli.EXIT_FAIL, cli.EXIT_INPUT, cli.EXIT_INTERNAL):
        assert f"| {code} |" in PAGE
