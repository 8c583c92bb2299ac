"""Modules imported at their first use, so a run that needs none of them never pays for them."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """A module imported at its first attribute access: ``scipy.stats`` costs about a second
    of start-up, and a run whose results all come from the memo (harness.memo) needs none."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)
