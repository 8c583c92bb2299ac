"""pytest collection: a suite file becomes one test item per check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.report.markdown import owner_line
from harness.results import Check


class CheckFailed(Exception):
    """Raised by an item whose check failed or errored."""

    def __init__(self, check: Check):
        self.check = check
        super().__init__(check.message)


class SuiteFile(pytest.File):
    """A suite file: evaluated once, then one :class:`CheckItem` per check."""

    def collect(self) -> Iterator[CheckItem]:
        from harness.plugin import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        outcome = session.evaluate(self.path)
        if outcome.error:
            raise self.CollectError(outcome.error)
        assert outcome.result is not None
        for check in outcome.result.checks:
            name = check.id.split("::", 1)[1]
            yield CheckItem.from_parent(self, name=name, check=check)


class CheckItem(pytest.Item):
    """One rubric criterion over one slice."""

    def __init__(self, *, check: Check, **kwargs: Any):
        super().__init__(**kwargs)
        self.check = check
        self.user_properties.append(("verdict", check.verdict))
        if check.value is not None:
            self.user_properties.append(("value", check.value))

    def runtest(self) -> None:
        if self.check.verdict in ("fail", "error"):
            raise CheckFailed(self.check)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            c = excinfo.value.check
            lines = [f"{c.verdict.upper()}: {c.id}", f"  {c.message}"]
            if c.examples:
                ref = c.compare.split("_")[0]
                label = (f"ids the {ref} got right and the student gets wrong"
                         if c.compare != "value" else "example ids")
                lines.append(f"  {label}: {', '.join(c.examples)}")
            responsible = owner_line(c.owner, c.playbook)
            if responsible:
                lines.append(f"  {responsible}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"distill: {self.name} [{self.check.verdict}]"
