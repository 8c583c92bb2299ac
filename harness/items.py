"""pytest collection: a suite file becomes one test item per check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.report.markdown import owner_line
from harness.results import Check

# The run's DistillSession in ``config.stash``. It lives here, not in plugin.py, so that the
# plugin imports the items and never the other way round.
SESSION_KEY = pytest.StashKey["Any"]()


class CheckFailed(Exception):
    """Raised by an item whose check failed or errored."""

    def __init__(self, check: Check):
        self.check = check
        super().__init__(check.message)


class SuiteFailed(Exception):
    """Raised by every item of a suite that could not run: the one message, for each."""


class SuiteFile(pytest.File):
    """A suite file: one :class:`CheckItem` per planned check. Collecting runs no model."""

    def collect(self) -> Iterator[CheckItem]:
        session = self.config.stash[SESSION_KEY]
        outcome = session.prepare(self.path)
        if outcome.error:
            raise self.CollectError(outcome.error)
        for planned in outcome.planned:
            name = planned.item_name
            yield CheckItem.from_parent(self, name=name, planned=planned, **_node_id(self, name))


def _node_id(parent: pytest.Collector, name: str) -> dict[str, Any]:
    """The node id of the item ``name`` under ``parent``, with its ``[...]`` part as parameters.

    pytest 9 compares structured node ids (``--lf``, ``--ff``, ``--sw`` parse the cached ids:
    ``suite.yaml::slice_gap[lang=de]`` has the name ``slice_gap`` and the params ``lang=de``).
    A plain item would get the one name ``slice_gap[lang=de]`` and no params, and never match
    its own cached id. The string form is unchanged; pytest 8 builds it from the name as is.
    """
    parent_id = getattr(parent, "id", None)
    if parent_id is None or not hasattr(parent_id, "child"):
        return {}
    base, bracket, params = name.partition("[")
    if not bracket:
        return {}
    return {"nodeid": parent_id.child(base).with_params(params.removesuffix("]"))}


class CheckItem(pytest.Item):
    """One rubric criterion over one slice. Its suite runs once, at its first item that runs."""

    def __init__(self, *, planned: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.planned = planned
        self.check: Check | None = None

    def runtest(self) -> None:
        outcome = self.config.stash[SESSION_KEY].evaluate(self.path)
        if outcome.error:
            raise SuiteFailed(outcome.error)
        check = outcome.check(self.planned.id)
        if check is None:
            raise SuiteFailed(f"check {self.planned.id} was planned but not computed")
        self.check = check
        self.user_properties.append(("verdict", check.verdict))
        if check.value is not None:
            self.user_properties.append(("value", check.value))
        if check.verdict in ("fail", "error"):
            raise CheckFailed(check)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SuiteFailed):
            return f"ERROR: {self.planned.id}\n  the suite could not run: {excinfo.value}"
        if isinstance(excinfo.value, CheckFailed):
            c = excinfo.value.check
            lines = [f"{c.verdict.upper()}: {c.id}", f"  {c.message}"]
            if c.examples:
                from harness.gate import compare_mode  # loaded: the suite ran

                ref = compare_mode(c.compare).reference
                label = (f"ids the {ref} got right and the student gets wrong"
                         if c.compare != "value" else "example ids")
                lines.append(f"  {label}: {', '.join(c.examples)}")
            responsible = owner_line(c.owner, c.playbook)
            if responsible:
                lines.append(f"  {responsible}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        verdict = f" [{self.check.verdict}]" if self.check is not None else ""
        return self.path, None, f"distill: {self.name}{verdict}"
