"""docs/reference/ is what scripts/gen_reference.py writes from the schemas and the metric
registry: a schema or metric change without regenerating the pages fails here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_reference", module)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


@pytest.mark.parametrize("name", sorted(GEN.pages()))
def test_committed_reference_page_is_the_generated_one(name: str) -> None:
    committed = ROOT / "docs" / "reference" / name
    assert committed.is_file(), f"docs/reference/{name} missing: run python scripts/gen_reference.py"
    assert committed.read_text(encoding="utf-8") == GEN.pages()[name], (
        f"docs/reference/{name} is stale: run python scripts/gen_reference.py")


def test_no_stray_pages() -> None:
    on_disk = {p.name for p in (ROOT / "docs" / "reference").glob("*.md")}
    assert on_disk == set(GEN.pages())


def test_every_note_names_a_field_of_its_schema() -> None:
    stale = [key for key in GEN.NOTES if key not in GEN.note_keys(key.split(":", 1)[0])]
    assert not stale, f"notes for fields the schemas no longer have: {stale}"


def test_every_schema_field_and_metric_is_on_a_page() -> None:
    pages = GEN.pages()
    for key in GEN.note_keys("suite"):
        field = key.split(":", 1)[1].rsplit(".", 1)[-1]
        assert f"`{field}`" in pages["suite.md"] or f".{field}`" in pages["suite.md"], key
    from harness.metrics import all_metrics

    for metric in all_metrics():
        assert f"| `{metric.name}` |" in pages["metrics.md"]


def test_check_mode_exits_1_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GEN, "OUT", tmp_path)
    assert GEN.main([]) == 0
    assert GEN.main(["--check"]) == 0
    (tmp_path / "metrics.md").write_text("old\n", encoding="utf-8")
    assert GEN.main(["--check"]) == 1
