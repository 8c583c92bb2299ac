"""The harness's own exceptions.

The glue (pytest plugin, CLI) turns each of them into one clear line: a pytest collection
error or CLI exit code 2. Their ``str()`` is that line: the file, the field path, what was
expected.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}: "
        if self.field:
            where += f"{self.field}: "
        return f"{where}{self.detail}"


class SpecError(HarnessError):
    """A suite, rubric or model spec is malformed or refers to something that does not exist."""


class DataError(HarnessError):
    """A data or predictions file cannot be read or breaks its contract."""


class ModelError(HarnessError):
    """A model cannot be loaded or run."""


class BaselineError(HarnessError):
    """A stored baseline is missing, stale or corrupt."""
