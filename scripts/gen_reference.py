"""Write the field tables of docs/reference/ from the code's own schemas and metric registry.

    python scripts/gen_reference.py           # (re)write docs/reference/*.md
    python scripts/gen_reference.py --check   # exit 1 when a committed page differs

Each page lists every field the JSON Schema (``harness/schemas/<name>.schema.json``) accepts:
its path, type, whether it is required, the values or bounds the schema allows, and what it
means (the schema's ``description``, else the note below). ``metrics.md`` is the metric
registry (``harness.metrics.all_metrics()``): task, direction, kind and description. The pages
are generated, so they cannot drift from the code; ``tests/docs/test_reference.py`` fails when
a committed page is not what this script writes, or when a note below names a field the schema
no longer has.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "harness" / "schemas"
OUT = ROOT / "docs" / "reference"

PAGES = {
    "suite": ("Suite file", "`suites/<name>.yaml` or `suites/<name>/suite.yaml`; explained in "
              "[../suites.md](../suites.md)."),
    "rubric": ("Rubric file", "`rubrics/<name>.yaml`; explained in [../rubrics.md](../rubrics.md)."),
    "predictions": ("Predictions file", "One JSON object per line of a `.jsonl` file (or a row "
                    "of a Parquet file), for `type: predictions` models; explained in "
                    "[../suites.md](../suites.md#predictions-files)."),
    "baseline": ("Baseline file", "`baselines/<suite>.json` (and pinned "
                 "`baselines/<suite>@<name>.json`), written by the harness only; see "
                 "[../history.md](../history.md)."),
    "report": ("JSON report", "`--distill-report PATH` / `distill run --report PATH`; explained "
               "in [../reports.md](../reports.md)."),
}

#: What a field means, where its schema has no ``description``: "schema:path" -> text.
#: The test holds every key to a field the schema has.
NOTES = {
    "suite:schema_version": "Format version of the file; always 1.",
    "suite:name": "The suite's name, unique in the repository; names its baseline file.",
    "suite:version": "The suite's own version; bump it when you edit the suite (a baseline of "
                     "another version is stale).",
    "suite:task": "What the models do: pick a label, or write text.",
    "suite:data": "The evaluation data (see the `data` section).",
    "suite:distillation_data": "What the student was trained on (coverage analysis); same keys "
                               "as `data`, label optional.",
    "suite:labels": "Classification: the label set, in a fixed order.",
    "suite:teacher": "The teacher model (see the `model` section).",
    "suite:student": "The gated student model.",
    "suite:students": "Several candidate students by name (the frontier and the cheapest that "
                      "passes); `student` then names the gated one.",
    "suite:rubric": "Path of the rubric, relative to this file.",
    "suite:baseline": "Path of the stored baseline; default `<repo root>/baselines/<name>.json`.",
    "suite:slices": "Declared slices (see the `slice` section).",
    "suite:discovery": "The hidden-pocket search.",
    "suite:discovery.features": "Features searched; default `data.features`.",
    "suite:discovery.max_predicates": "Longest conjunction of predicates in a pocket.",
    "suite:discovery.min_support": "Fewest examples a pocket may have.",
    "suite:discovery.enabled": "`false`: no pocket search (a `scope: discovered` criterion is "
                               "then an error at load; `traffic` criteria check no pockets).",
    "suite:discovery.n_bins": "Quantile bins a numeric feature is cut into (default 4); a "
                              "pocket's range is a run of adjacent bins.",
    "suite:discovery.include_length": "Also search the input's length in words "
                                      "(`input_words`).",
    "suite:coverage": "Distillation coverage: what the eval set has and `distillation_data` "
                      "lacks.",
    "suite:coverage.enabled": "`false`: no coverage analysis (the report's coverage says "
                              "`enabled: false`; a criterion on `uncovered_fraction` errors).",
    "suite:coverage.embeddings": "Vectors compared: `tfidf` (default) or the teacher's "
                                 "embeddings.",
    "suite:coverage.quantile": "An eval example is uncovered when its nearest distillation "
                               "example is farther than this quantile of the distillation "
                               "examples' own nearest-neighbour distances (default 0.95).",
    "suite:coverage.rare_share": "A value or slice is a gap when its distillation share is "
                                 "below this times its eval share (default 0.2).",
    "suite:economics": "Serving prices and how latency is measured.",
    "suite:traffic_data": "A sample of production inputs (no label): drift and label-free "
                          "checks; same keys as `data`.",
    "suite:$defs.data.path": "Data file relative to the suite: `.jsonl`, `.json` (a list of "
                             "objects), `.csv` or `.parquet`; inside the repository.",
    "suite:$defs.data.sha256": "Optional pin of the file's content; a mismatch is an error.",
    "suite:$defs.data.id": "The unique example id field (default `id`); every row needs one.",
    "suite:$defs.data.input": "Field (or list of fields) given to the models.",
    "suite:$defs.data.label": "Gold label (classification) or reference(s) (generation).",
    "suite:$defs.data.features": "Metadata fields for slicing, pocket discovery and coverage.",
    "suite:$defs.data.prompt": "Generation: a template with `{field}` placeholders of plain "
                               "field names; nothing is evaluated.",
    "suite:$defs.model.type": "Which adapter runs the model.",
    "suite:$defs.model.path": "`transformers`: a local folder (relative to the suite, inside the "
                              "repository) or a hub id; `predictions`: the outputs file.",
    "suite:$defs.model.target": "`callable`: `package.module:function`, called with a list of "
                                "example dicts.",
    "suite:$defs.model.revision": "Hub revision, or what you pin for an endpoint; enters the "
                                  "fingerprint.",
    "suite:$defs.model.batch_size": "Examples per forward pass / generation batch.",
    "suite:$defs.model.max_length": "Tokens kept of each input.",
    "suite:$defs.model.device": "Where a transformers model runs.",
    "suite:$defs.model.dtype": "Weights' dtype for a transformers model.",
    "suite:$defs.model.trust_remote_code": "Run Python code shipped with the model; also needs "
                                           "`--distill-allow-remote-code`.",
    "suite:$defs.model.allow_pickle": "Allow a pickle checkpoint (safetensors only otherwise).",
    "suite:$defs.model.metadata": "Facts for economics: `params`, `bytes`, `training: {gpu_hours, "
                                  "usd, examples}`, `usd_per_million_tokens: {input, output}`.",
    "suite:$defs.model.generation": "How a language model generates; every setting enters the "
                                    "fingerprint.",
    "suite:$defs.model.device_map": "`auto`: spread a model too big for one device (accelerate).",
    "suite:$defs.model.base_url": "`openai`: the server's URL, ending in `/v1`.",
    "suite:$defs.model.base_url_env": "`openai`: the NAME of a variable holding the URL.",
    "suite:$defs.model.model": "`openai`: the served model name, sent as is.",
    "suite:$defs.model.api": "`openai`: which endpoint is called.",
    "suite:$defs.model.api_key_env": "`openai`: the NAME of the variable holding the key (the "
                                     "key is never written anywhere).",
    "suite:$defs.model.max_connections": "`openai`: requests in flight at once.",
    "suite:$defs.model.timeout_s": "`openai`: seconds per attempt.",
    "suite:$defs.model.retries": "`openai`: retries on 429 (Retry-After honoured), 5xx and "
                                 "connection errors; never on other 4xx.",
    "suite:$defs.model.labels_map": "`openai`, classification: answer text -> label "
                                    "(e.g. `{positive: fresh}`), applied after the cache.",
    "suite:$defs.model.generation.max_new_tokens": "Most tokens generated per answer (always "
                                                   "sent: servers' defaults differ).",
    "suite:$defs.model.generation.stop": "Strings that end an answer (cut before them).",
    "suite:$defs.model.generation.temperature": "0 is greedy (deterministic).",
    "suite:$defs.model.generation.seed": "Sampling seed, sent to servers that take one.",
    "suite:$defs.model.generation.chat": "Apply the tokenizer's chat template (or call the chat "
                                         "API).",
    "suite:$defs.model.generation.system": "System message of a chat prompt.",
    "suite:$defs.condition.eq": "Equal to.",
    "suite:$defs.condition.ne": "Not equal to.",
    "suite:$defs.condition.in": "One of these values.",
    "suite:$defs.condition.not_in": "None of these values.",
    "suite:$defs.condition.lt": "Less than (numbers).",
    "suite:$defs.condition.lte": "At most.",
    "suite:$defs.condition.gt": "Greater than.",
    "suite:$defs.condition.gte": "At least.",
    "suite:$defs.condition.regex": "A regular expression searched in the value's text.",
    "suite:$defs.slice.min_support": "`by:` values with fewer examples make no slice; the "
                                     "checks of its slices use it as their minimum support "
                                     "(instead of their criterion's).",
    "suite:economics.batch_sizes": "Batch sizes at which latency and throughput are measured.",
    "suite:economics.sample": "Examples timed per batch size.",
    "suite:economics.warmup": "Untimed warm-up batches.",
    "suite:economics.threads": "torch threads while timing (null: leave as is).",
    "suite:$defs.slice.name": "A declared slice's name.",
    "suite:$defs.slice.where": "Field -> condition, all AND-ed (see the `condition` section).",
    "suite:$defs.slice.by": "One slice per distinct value of this feature (or features).",
    "suite:$defs.slice.owner": "Who answers when a check of this slice fails (`@org/team`).",
    "suite:$defs.slice.playbook": "What they do: a repository path or an https URL.",
    "rubric:schema_version": "Format version of the file; always 1.",
    "rubric:id": "The rubric's id; baselines record it.",
    "rubric:version": "Bump on every edit; a baseline of another version is stale.",
    "rubric:defaults": "Settings every criterion inherits (see the `settings` section).",
    "rubric:criteria": "The checks (see the `criterion` section).",
    "rubric:$defs.criterion.name": "The criterion's name; a check's id is `suite::name[slice]`.",
    "rubric:$defs.criterion.metric": "A metric of the suite's task (see metrics.md).",
    "rubric:$defs.criterion.compare": "What is held to the threshold: the student's own value, "
                                      "its ratio or difference to the teacher, or to the stored "
                                      "baseline.",
    "rubric:$defs.criterion.min": "The value must be at least this.",
    "rubric:$defs.criterion.max": "The value must be at most this.",
    "rubric:$defs.criterion.scope": "Where the check runs: overall, each declared slice, both, "
                                    "each discovered pocket, or on traffic_data.",
    "rubric:$defs.criterion.severity": "`warn`: a breach warns and never fails the build.",
    "rubric:$defs.criterion.model": "With `compare: value`: whose own metric is read.",
    "rubric:$defs.criterion.against": "With `baseline_*`: `current` or the name of a pinned "
                                      "baseline.",
    "rubric:$defs.criterion.owner": "Who answers when this check fails.",
    "rubric:$defs.criterion.playbook": "What they do: a repository path or an https URL.",
    "rubric:$defs.settings.alpha": "One-sided test level; BH across per-slice and discovered "
                                   "checks.",
    "rubric:$defs.settings.min_support": "Fewer examples than this: the check is inconclusive.",
    "rubric:$defs.settings.decision": "`significant`: a breach fails only when the test rejects; "
                                      "`point`: the point value decides.",
    "rubric:$defs.settings.confidence": "Level of the printed intervals; default 1 - 2*alpha.",
    "predictions:id": "The example's id; every id of the suite exactly once.",
    "predictions:label": "Classification: the predicted label, one of the suite's `labels`.",
    "predictions:scores": "Classification, optional: probabilities over the suite's labels "
                          "(sum 1).",
    "predictions:output": "Generation: the answer text.",
    "predictions:usage": "Generation, optional: tokens, for cost by the token.",
    "predictions:finish_reason": "Generation, optional: `length` counts in `truncated_rate`.",
    "report:schema_version": "Format version; always 1.",
    "report:harness_version": "The harness that wrote the report.",
    "report:verdict": "`fail` when any check fails or errors (or any suite could not run).",
    "report:strict": "Whether `--distill-strict` made inconclusive checks fail.",
    "report:suites": "One entry per suite (see the `suite` section).",
    "report:errors": "Suites that could not be loaded or run: file and message.",
    "report:baselines": "Per suite, what `--update-baselines` wrote.",
    "report:$defs.check.id": "`suite::criterion[slice]`, as the pytest item is named.",
    "report:$defs.check.value": "The point value compared with the threshold.",
    "report:$defs.check.ci": "Two-sided interval at the rubric's confidence.",
    "report:$defs.check.n": "Examples behind the value.",
    "report:$defs.check.p_value": "One-sided test of \"the true value meets the threshold\".",
    "report:$defs.check.q_value": "Benjamini-Hochberg adjusted p-value in its family.",
    "report:$defs.check.verdict": "See docs/rubrics.md#verdicts.",
    "report:$defs.check.examples": "A few example ids that pull the value the wrong way.",
    "baseline:schema_version": "Format version; always 1.",
    "baseline:about": "What the accepted run was measured on, and its deterministic scorecard.",
    "baseline:about.data_sha256": "The eval data's sha256; another value makes the baseline stale.",
    "baseline:about.n": "Examples in the eval data.",
    "baseline:about.rubric": "The rubric's id and version; another one makes the baseline stale.",
    "baseline:about.suite": "The suite's name, version and task; another version makes it stale.",
    "baseline:about.teacher": "The teacher's fingerprint and size when the baseline was written.",
    "baseline:about.student": "The accepted student's fingerprint and size.",
    "baseline:about.harness_version": "The harness that wrote the baseline.",
    "baseline:about.slices": "Per slice: the primary metric of teacher and student, delta, CI, n.",
    "baseline:about.scorecard": "Deterministic economics of the accepted run (no timings), read by "
                                "`distill history`.",
    "baseline:outcomes": "The student's per-example outcomes, for paired comparison by id.",
    "baseline:outcomes.labels": "Classification: the label set the outcomes index.",
    "baseline:outcomes.by_id": "Example id -> the student's outcome (a label, or an answer).",
    "report:$defs.suite.name": "The suite's name.",
    "report:$defs.suite.version": "The suite's version.",
    "report:$defs.suite.n": "Examples in the eval data.",
    "report:$defs.suite.data_sha256": "The eval data's sha256.",
    "report:$defs.suite.rubric": "The rubric's id and version.",
    "report:$defs.suite.teacher": "Fingerprint, parameters, bytes (and usage for endpoints).",
    "report:$defs.suite.student": "The gated student, as `teacher`.",
    "report:$defs.suite.checks": "One per check (pytest item).",
    "report:$defs.suite.slices": "The per-slice table of the primary metric.",
    "report:$defs.suite.pockets": "Discovered regression pockets.",
    "report:$defs.suite.coverage_gaps": "Where the data cannot decide, or the distillation data "
                                        "never reached.",
    "report:$defs.suite.teacher_audit": "The teacher's own errors: accuracy, weak slices, suspect "
                                        "ids, the error rate the student inherited.",
    "report:$defs.suite.economics": "The scorecard: size, latency, throughput, cost, training, "
                                    "payback.",
    "report:$defs.suite.traffic": "Drift between eval data and traffic_data, and the label-free "
                                  "checks on it.",
    "report:$defs.suite.examples": "Example id -> input, reference, both answers and per-metric "
                                   "outcomes, for the examples checks and pockets cite.",
    "report:$defs.suite.notes": "Notes of the run (a changed teacher, a recomputed cache entry).",
    "report:$defs.check.criterion": "The rubric criterion's name.",
    "report:$defs.check.slice": "The slice (`overall`, a declared slice, or a pocket's name).",
    "report:$defs.check.threshold": "The criterion's `min` and/or `max`.",
    "report:$defs.check.message": "One line: what was measured against what.",
    "report:$defs.gap.kind": "Why it is a gap (support, distillation, embedding, drift).",
    "report:$defs.gap.needed": "Examples that would decide the check, where that can be said.",
    "report:$defs.model.fingerprint": "Hash of what determines the model's outputs.",
    "report:$defs.model.params": "Parameter count, where known.",
    "report:$defs.model.bytes": "Weights' size on disk, where known.",
    "report:$defs.pocket.predicates": "The conditions that define the pocket (ops of `where`).",
    "report:$defs.pocket.delta": "Student minus teacher on the pocket's examples.",
    "report:$defs.pocket.slice": "The pocket's name: its predicates joined with ` & `.",
    "report:$defs.pocket.confirmed": "Whether the pocket's gap survives BH.",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        return f"[{target}](#{target.replace('_', '-')})"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v) if not isinstance(v, str) else v}`"
                            for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node and "type" not in node:
            return " or ".join(_type(alt) for alt in node[key])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items") or {}
        return f"list of {_type(items)}" if items else "list"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict) \
            and not node.get("properties"):
        return f"mapping to {_type(node['additionalProperties'])}"
    return str(kind) if kind else "any"


def _allowed(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                       ("exclusiveMaximum", "<"), ("minLength", "length >="),
                       ("minItems", "items >="), ("maxItems", "items <=")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`".replace("|", "\\|"))
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    if node.get("uniqueItems"):
        parts.append("unique")
    return ", ".join(parts)


def _alternatives(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [alt for key in ("oneOf", "anyOf") for alt in node.get(key) or []
            if isinstance(alt, dict)]


def _scalar_forms(node: dict[str, Any]) -> str:
    """The alternatives that are plain values (a condition's bare scalar: equality)."""
    plain = [_type(alt) for alt in _alternatives(node) if not alt.get("properties")]
    return f" (or a plain value: {'; '.join(plain)})" if plain else ""


def _children(node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(suffix, child schema, required) of an object's fields, and of its list items."""
    required = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        yield f".{name}", child, name in required
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or extra.get("type") == "object"):
        yield ".<name>", extra, False


def _rows(node: dict[str, Any], prefix: str, key: str, schema: str) -> Iterator[list[str]]:
    for suffix, child, required in _children(node):
        path = f"{prefix}{suffix}".lstrip(".")
        note_key = f"{schema}:{key}{suffix}".replace(":.", ":")
        text = child.get("description") or NOTES.get(note_key, "")
        yield [f"`{path}`", _type(child), "yes" if required else "", _allowed(child),
               text.replace("|", "\\|").replace("\n", " ")]
        nested = child
        if child.get("type") == "array" and isinstance(child.get("items"), dict):
            nested, path = child["items"], path + "[]"
        elif child.get("type") == "object" or "object" in (child.get("type") or []):
            pass
        else:
            continue
        if "$ref" not in nested and (nested.get("properties") or isinstance(
                nested.get("additionalProperties"), dict)):
            yield from _rows(nested, path, f"{key}{suffix}", schema)


def note_keys(schema: str) -> set[str]:
    """Every "schema:path" a note may name (the fields of the schema and of its $defs)."""
    doc = load(schema)
    keys: set[str] = set()

    def walk(node: dict[str, Any], key: str) -> None:
        for suffix, child, _ in _children(node):
            keys.add(f"{schema}:{key}{suffix}".replace(":.", ":"))
            nested = child["items"] if child.get("type") == "array" and isinstance(
                child.get("items"), dict) else child
            walk(nested, f"{key}{suffix}")

    walk(doc, "")
    for name, sub in (doc.get("$defs") or {}).items():
        for node in (sub, *_alternatives(sub)):
            walk(node, f"$defs.{name}")
    return keys


def _table(rows: list[list[str]]) -> list[str]:
    out = ["| field | type | required | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def schema_page(name: str) -> str:
    doc = load(name)
    title, intro = PAGES[name]
    lines = [f"# {title}", "",
             f"<!-- generated by scripts/gen_reference.py from harness/schemas/{name}.schema.json;"
             " do not edit -->", "", intro, "",
             f"Schema: `harness/schemas/{name}.schema.json` (JSON Schema draft 2020-12). "
             "`distill validate FILE` checks a file against it.", ""]
    if doc.get("description"):
        lines += [doc["description"], ""]
    lines += _table(list(_rows(doc, "", "", name)))
    for def_name, sub in (doc.get("$defs") or {}).items():
        rows = list(_rows(sub, "", f"$defs.{def_name}", name))
        lines += ["", f"## {def_name}", ""]
        if sub.get("description"):
            lines += [sub["description"], ""]
        forms = [alt for alt in _alternatives(sub) if alt.get("properties")]
        if rows:
            lines += _table(rows)
        elif forms:
            lines.append(f"One of {len(forms)} forms{_scalar_forms(sub)}.")
            for i, alt in enumerate(forms, 1):
                lines += ["", f"Form {i}:", ""]
                lines += _table(list(_rows(alt, "", f"$defs.{def_name}", name)))
        else:
            lines.append(f"Type: {_type(sub)}.")
    return "\n".join(lines) + "\n"


def metrics_page() -> str:
    sys.path.insert(0, str(ROOT))
    from harness.metrics import all_metrics

    lines = ["# Metrics", "",
             "<!-- generated by scripts/gen_reference.py from harness.metrics; do not edit -->", "",
             "Every metric a rubric criterion can name, from the metric registry "
             "(`harness.metrics`). A metric of the other task is refused when the rubric loads. "
             "**direction**: `higher` is better, or `lower` (gate those with `max:`). **kind**: "
             "`example` metrics are means of per-example values (paired tests: exact McNemar / "
             "binomial for 0/1 outcomes, paired bootstrap otherwise), `corpus` metrics are "
             "computed over the whole set (paired bootstrap over examples), `suite` metrics are "
             "one figure of the suite (the economics scorecard, coverage), gated with "
             "`compare: value`. **needs**: `gold` (labels or references in the data), `scores` "
             "(class probabilities), `teacher` (the teacher's outputs), `usage`/`finish` (token "
             "counts, finish reasons).", "",
             "Judge metrics (`judge:<name>` and its health metrics) exist for each judge a suite "
             "declares under `judges:`.", "",
             "| metric | tasks | direction | kind | needs | what it is |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in sorted(all_metrics(), key=lambda m: m.name):
        what = m.description.replace("|", "\\|")
        lines.append(f"| `{m.name}` | {', '.join(sorted(m.tasks))} | {m.direction} | {m.kind} | "
                     f"{', '.join(sorted(m.needs))} | {what} |")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Page file name -> text: everything this script writes."""
    out = {f"{name}.md": schema_page(name) for name in PAGES}
    out["metrics.md"] = metrics_page()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a page differs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in pages().items():
        target = OUT / name
        if args.check:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if stale:
        print(f"docs/reference is stale: {', '.join(stale)}; run python scripts/gen_reference.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
