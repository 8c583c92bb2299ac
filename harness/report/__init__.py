"""Reports: the JSON document, Markdown (GitHub job summary) and terminal tables.

Renderers take the report *dict* (the JSON shape), so ``distill report out.json`` renders a
stored report exactly as a live run does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.fileio import atomic_write_text
from harness.results import SuiteResult

SCHEMA_VERSION = 1


def build_report(results: Sequence[SuiteResult], *, errors: Iterable[Mapping[str, Any]] = (),
                 strict: bool = False, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report document of a run (validates against ``report.schema.json``)."""
    errs = [dict(e) for e in errors]
    suites = [_clean(r.to_dict()) for r in results]
    verdict = "fail" if errs or any(s["verdict"] == "fail" for s in suites) else "pass"
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "harness_version": __version__,
                           "verdict": verdict, "strict": strict, "suites": suites}
    if errs:
        doc["errors"] = errs
    if extra:
        doc.update(extra)
    return doc


def _clean(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become null, tuples lists, numpy scalars Python numbers."""
    import math

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(report, indent=2, sort_keys=True) + "\n")


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate a stored report (SpecError on a bad file)."""
    from harness.spec import read_document, validate_document

    doc, _ = read_document(Path(path))
    validate_document(doc, "report", path)
    return dict(doc)
