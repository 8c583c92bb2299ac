"""A ``by:`` entry's ``min_support``: values with fewer examples make no slice (DESIGN's
suite reference), on the eval data; the distillation data keeps them (coverage compares)."""

from __future__ import annotations

from pathlib import Path

from harness.data import build_slices
from harness.spec import load_suite
from harness.tasks import get_task


def test_by_values_below_min_support_make_no_slice(tiny_copy: Path) -> None:
    path = tiny_copy / "suites" / "tiny.yaml"
    plain = load_suite(path)
    data = get_task(plain.task).load_data(plain.data, plain)
    assert {"lang=de", "lang=en"} <= set(build_slices(plain, data))  # 8 and 16 rows
    path.write_text(path.read_text("utf-8").replace(
        "  - by: lang\n", "  - by: lang\n    min_support: 10\n"), "utf-8")
    spec = load_suite(path)
    slices = build_slices(spec, data)
    assert "lang=de" not in slices and len(slices["lang=en"]) == 16
    assert "has_negation=true" in slices  # another entry's slices are its own business
    kept = build_slices(spec, data, allow_empty=True, drop_small=False)
    assert len(kept["lang=de"]) == 8
