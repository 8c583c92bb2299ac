"""The dry run: what a run would ask of each model — requests, tokens, dollars — running none.

``distill run --dry-run`` and ``pytest --distill-dry-run`` print :func:`plan_lines` and exit 0.
A model that answers over the network (``type: openai``) plans its requests itself
(``plan_requests``: its cached answers excluded); any other model either has its outputs in the
prediction cache or would run locally.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.options import Options

#: How the estimate is made, printed under it: the figures are not a bill.
ESTIMATE_NOTE = ("input tokens estimated as prompt characters / 4, output tokens counted at "
                 "max_new_tokens per request (an upper bound)")


def plan_suite(path: Path, options: Options) -> dict[str, Any]:
    """The plan of one suite: per model, what a run would do over what the models run on (the
    eval data, and the traffic sample when there is one). Runs no model."""
    from harness.cache import PredictionCache
    from harness.models.runs import load_models
    from harness.paths import display_path
    from harness.runner import prepare_suite

    prep = prepare_suite(Path(path), options)
    spec, data = prep.spec, prep.model_data
    labels = list(spec.labels)
    cache = PredictionCache(options.cache_dir)
    models = load_models(spec, options)
    rows: list[dict[str, Any]] = []
    try:
        for role, model in [("teacher", models.teacher), *models.students.items()]:
            ms = spec.teacher if role == "teacher" else spec.students[role]
            row: dict[str, Any] = {"role": role, "type": ms.type, "examples": len(data)}
            planner = getattr(model, "plan_requests", None)
            if planner is not None:
                row.update(planner(data, labels))
            else:
                hit = cache.load(model.fingerprint(), data, labels)
                row.update({"requests": 0, "cached": len(data) if hit is not None else 0,
                            "local": hit is None})
            rows.append(row)
        if spec.judges:
            from harness.judges import plan_judges

            n = len(prep.data)
            answers = [_known_answers(m, data, labels, cache) for m in (models.teacher,
                                                                        models.student)]
            teacher, student = (a[:n] if a is not None else None for a in answers)
            rows.extend(plan_judges(spec, prep.data, teacher, student, options))
    finally:
        models.close()
    return {"suite": spec.name, "path": display_path(spec.path), "models": rows}


def _known_answers(model: Any, data: Any, labels: list[str], cache: Any) -> list[str] | None:
    """A model's answers over ``data`` where they can be had without running it: a
    predictions file, or outputs in the prediction cache; None otherwise."""
    if model.precomputed:
        return list(model.predict(data, labels).outputs or ())
    hit = cache.load(model.fingerprint(), data, labels)
    return list(hit.outputs or ()) if hit is not None else None


def plan_lines(paths: Sequence[Path], options: Options) -> list[str]:
    """The dry run's report, one line per model and data set, then the totals."""
    lines: list[str] = []
    requests, usd, priced_all = 0, 0.0, True
    for path in paths:
        plan = plan_suite(path, options)
        lines.append(f"distill dry run: suite {plan['suite']} ({plan['path']})")
        for row in plan["models"]:
            lines.append("  " + _row_line(row))
            requests += int(row.get("requests") or 0)
            if row.get("requests"):
                if row.get("usd_estimate") is None:
                    priced_all = False
                else:
                    usd += float(row["usd_estimate"])
    cost = f"estimated ${usd:,.4f}" if priced_all else (
        f"estimated ${usd:,.4f} for the priced models (some have no "
        "metadata.usd_per_million_tokens)")
    lines.append(f"distill dry run: {requests:,} requests in all, {cost}; {ESTIMATE_NOTE}; "
                 "no model was run")
    return lines


def _row_line(row: dict[str, Any]) -> str:
    where = f"{row['role']} ({row['type']}"
    if row.get("model"):
        where += f" {row['model']}, {row.get('api')}"
    where += ")"
    n, cached = row["examples"], row.get("cached", 0)
    if "local" in row:
        if not row["local"]:
            return f"{where}: all {n:,} examples cached, runs 0 times"
        return f"{where}: runs locally on {n:,} examples (none cached), no requests"
    text = (f"{where}: {row['requests']:,} requests ({cached:,} of {n:,} examples cached), "
            f"~{row['input_tokens_estimate']:,} input tokens + at most "
            f"{row['output_tokens_max']:,} output tokens")
    usd = row.get("usd_estimate")
    if not row["requests"]:
        return text + ", $0"
    return text + (f", estimated ${usd:,.4f}" if usd is not None
                   else ", no price (metadata.usd_per_million_tokens not set)")
