"""The command-line choices of one run, as one frozen object the core receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Options:
    """Choices from the command line (pytest flags or ``distill run``).

    ``cache_dir`` None means the prediction cache is off (``--distill-no-cache``).
    """

    cache_dir: Path | None = Path(".distill-cache")
    strict: bool = False
    allow_remote_code: bool = False
    device: str | None = None
    update_baselines: bool = False
    report_path: Path | None = None
    markdown_path: Path | None = None
    annotations: bool = False
    progress: bool = False
    seed: int = 0
    #: ``--distill-dry-run`` / ``distill run --dry-run``: plan the requests, run no model.
    dry_run: bool = False
    #: ``--distill-html`` / ``distill run --html``: the self-contained HTML page.
    html_path: Path | None = None
    #: ``--distill-report-examples`` / ``--report-examples``: examples kept per check and pocket.
    report_examples: int = 50
    #: How the front end in use spells its flags: ``--distill-`` under pytest, ``--`` for
    #: ``distill run``; messages that tell the user what to pass say it through :meth:`flag`.
    flag_prefix: str = "--distill-"
    #: Where progress is written (``write``/``flush``/``isatty``); None: stderr. The pytest glue
    #: passes its terminal writer, so progress is not swallowed by output capture.
    progress_stream: Any = field(default=None, compare=False)

    def flag(self, name: str) -> str:
        """The command-line flag ``name`` (e.g. ``update-baselines``) as the user types it."""
        return f"{self.flag_prefix}{name}"
