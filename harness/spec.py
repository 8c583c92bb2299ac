"""Loading suites and rubrics: YAML or JSON, validated against the JSON Schemas.

Every error is a :class:`~harness.errors.SpecError` whose text names the file, the path of
the field and what was expected, e.g.
``rubrics/r.yaml: criteria[2].compare: 'teacher_ration' is not one of value, teacher_ratio, …``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError
from harness.paths import display_path, find_root, resolve_path
from harness.spec_types import (
    JUDGE_PLACEHOLDERS,
    PAIRWISE_VERDICT,
    POINTWISE_VERDICT,
    CoverageSettings,
    Criterion,
    DataSpec,
    DiscoverySpec,
    GenerationSettings,
    JudgeSpec,
    ModelSpec,
    RubricSpec,
    SliceSpec,
    SuiteSpec,
)

SCHEMA_NAMES = ("suite", "rubric", "predictions", "report", "baseline")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The packaged JSON Schema ``harness/schemas/<name>.schema.json``."""
    text = resources.files("harness").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def field_path(parts: Iterable[Any]) -> str:
    """A JSON path as ``criteria[2].compare``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: Any) -> tuple[str, str]:
    """(field path, what was expected) for one jsonschema ValidationError."""
    path = list(error.absolute_path)
    v = error.validator
    if v == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        return field_path(path), f"{error.instance!r} is not one of {options}"
    if v == "const":
        return field_path(path), f"{error.instance!r} is not supported (expected {error.validator_value!r})"
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else error.message
        return field_path([*path, name]), "required field is missing"
    if v == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        allowed = sorted(error.schema.get("properties", {}))
        name = extra[0] if extra else "?"
        hint = ""
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        return field_path([*path, name]), f"unknown field{hint}; expected one of {', '.join(allowed)}"
    if v == "type":
        t = error.validator_value
        t = " or ".join(t) if isinstance(t, list) else t
        return field_path(path), f"expected {t}, got {error.instance!r}"
    if v == "pattern":
        return field_path(path), f"{error.instance!r} does not match {error.validator_value}"
    if v == "anyOf" and error.schema.get("anyOf") and all(
        "required" in s for s in error.schema["anyOf"]
    ):
        keys = " or ".join(s["required"][0] for s in error.schema["anyOf"])
        return field_path(path), f"needs {keys}"
    return field_path(path), error.message


def _best_branch_error(error: Any) -> Any:
    """The most telling error inside a oneOf/anyOf: from the branch the document meant.

    A branch whose type does not fit the value at all is not the one meant; of the others, the
    branch with the fewest errors is (``{name, where}`` with a bad operator is a named slice
    with a bad condition, not a ``by:`` slice that lacks ``by``).
    """
    import jsonschema

    branches: dict[Any, list[Any]] = {}
    for e in error.context:
        key = e.relative_schema_path[0] if e.relative_schema_path else None
        branches.setdefault(key, []).append(e)

    def wrong_type(errs: list[Any]) -> bool:
        return any(e.validator == "type" and not e.relative_path for e in errs)

    fitting = [errs for errs in branches.values() if not wrong_type(errs)] or list(branches.values())
    return jsonschema.exceptions.best_match(min(fitting, key=len))


def validate_document(doc: Any, schema_name: str, file: Path | str) -> None:
    """Validate ``doc`` against a packaged schema; a SpecError names the first problem."""
    import jsonschema

    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(doc))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    # For oneOf/anyOf, best_match may pick the umbrella error; descend to the most specific.
    while error.context:
        if all(e.validator == "required" for e in error.context):
            break  # "needs min or max": the umbrella says it better than either branch
        deeper = _best_branch_error(error)
        if deeper is None:
            break
        error = deeper
    where, what = _describe(error)
    raise SpecError(what, file=display_path(file), field=where or "(top level)")


def read_document(path: Path) -> tuple[Any, str]:
    """Parse a YAML or JSON file (``yaml.safe_load`` only). Returns (document, text)."""
    shown = display_path(path)
    if not path.exists():
        raise SpecError("file not found", file=shown)
    if path.is_dir():
        raise SpecError("expected a file, found a folder", file=shown)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=shown) from None
    if path.suffix == ".json":
        try:
            return json.loads(text), text
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=shown
            ) from None
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"invalid YAML{at}: {problem}", file=shown) from None


def _item_lines(text: str, key: str) -> list[int]:
    """1-based line of each item of the top-level list ``key`` (YAML or JSON text)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for k, v in node.value:
        if getattr(k, "value", None) == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _data_spec(raw: Mapping[str, Any], *, source: Path, root: Path, field: str) -> DataSpec:
    inp = raw.get("input", "text")
    prompt = raw.get("prompt")
    if prompt is not None:
        from harness.data import prompt_fields  # numpy: not at import (a cached collection)

        prompt_fields(prompt, file=display_path(source), field=f"{field}.prompt")
    return DataSpec(
        path=resolve_path(raw["path"], source=source, root=root, field=f"{field}.path"),
        source=source,
        field=field,
        sha256=raw.get("sha256"),
        id=raw.get("id", "id"),
        input=(inp,) if isinstance(inp, str) else tuple(inp),
        label=raw.get("label"),
        features=tuple(raw.get("features", ())),
        prompt=prompt,
    )


def _generation(raw: Mapping[str, Any] | None) -> GenerationSettings | None:
    if raw is None:
        return None
    return GenerationSettings(
        max_new_tokens=int(raw.get("max_new_tokens", 32)),
        stop=tuple(raw.get("stop") or ()),
        temperature=float(raw.get("temperature", 0.0)),
        top_p=float(raw["top_p"]) if raw.get("top_p") is not None else None,
        seed=int(raw.get("seed", 0)),
        chat=bool(raw.get("chat", False)),
        system=raw.get("system"),
    )


def _model_spec(raw: Mapping[str, Any], *, source: Path, root: Path, field: str,
                task: str = "classification", prompt: str | None = None) -> ModelSpec:
    mtype = raw["type"]
    path = raw.get("path")
    kind = "folder" if mtype == "transformers" else "file"
    local: Path | None = None
    if raw.get("path_env") is not None:
        if path is not None:
            raise SpecError("give path or path_env, not both", file=display_path(source),
                            field=f"{field}.path_env")
        local = _path_from_env(raw["path_env"], kind, source=source, field=f"{field}.path_env")
    if path is not None:
        candidate = Path(path)
        looks_like_hub = (
            mtype == "transformers"
            and not candidate.is_absolute()
            and not path.startswith(".")
            and _HUB_ID.match(path) is not None
        )
        resolved = resolve_path(
            path, source=source, root=root, field=f"{field}.path", must_exist=False,
            outside=f"; a model {kind} kept outside it (a CI cache, a mounted volume) is named "
                    f"by path_env: the name of an environment variable holding its location")
        if resolved.exists() or not looks_like_hub:
            if not resolved.exists():
                raise SpecError(
                    f"{kind} {path!r} not found (resolved to {display_path(resolved)})",
                    file=display_path(source), field=f"{field}.path")
            local = resolved
    if raw.get("trust_remote_code") and mtype != "transformers":
        raise SpecError("trust_remote_code applies to transformers models only",
                        file=display_path(source), field=f"{field}.trust_remote_code")
    # Training facts and token prices: checked now, so a bad one fails before any model runs.
    from harness.economics.settings import parse_token_prices, parse_training

    metadata = dict(raw.get("metadata") or {})
    shown = display_path(source)
    return ModelSpec(
        type=mtype,
        source=source,
        field=field,
        path=path,
        path_env=raw.get("path_env"),
        local_path=local,
        target=raw.get("target"),
        revision=raw.get("revision"),
        batch_size=int(raw.get("batch_size", 32)),
        max_length=int(raw.get("max_length", 128)),
        device=raw.get("device", "auto"),
        dtype=raw.get("dtype", "auto"),
        trust_remote_code=bool(raw.get("trust_remote_code", False)),
        allow_pickle=bool(raw.get("allow_pickle", False)),
        metadata=metadata,
        training=parse_training(metadata.get("training"), shown,
                                where=f"{field}.metadata.training"),
        prices=parse_token_prices(metadata.get("usd_per_million_tokens"), shown,
                                  where=f"{field}.metadata.usd_per_million_tokens"),
        generation=_generation(raw.get("generation")) or (
            GenerationSettings() if task == "generation" else None),
        device_map=raw.get("device_map"),
        prompt=prompt,
        task=task,
        raw=dict(raw),
    )


def _path_from_env(name: str, kind: str, *, source: Path, field: str) -> Path:
    """The model folder (or file) the environment variable ``name`` holds: anywhere on the
    machine, the point of ``path_env``; a relative value is taken from the working directory."""
    value = os.environ.get(name, "").strip()
    shown = display_path(source)
    if not value:
        raise SpecError(f"environment variable {name} is not set; it must hold the model's "
                        f"{kind}", file=shown, field=field)
    target = Path(value).expanduser().resolve()
    if not (target.is_dir() if kind == "folder" else target.is_file()):
        raise SpecError(f"{name}={value!r}: no such {kind}", file=shown, field=field)
    return target


def load_rubric(path: Path, root: Path | None = None, *, task: str | None = None,
                has_gold: bool = True) -> RubricSpec:
    """Load and validate a rubric file; every criterion's metric must be known.

    With ``task`` (a suite loading its rubric) each metric must apply to that task, and a
    metric that needs gold labels is refused when the suite's data has none (``has_gold``).
    """
    from harness import metrics

    path = path.resolve()
    doc, text = read_document(path)
    validate_document(doc, "rubric", path)
    shown = display_path(path)
    defaults = dict(doc.get("defaults") or {})
    lines = _item_lines(text, "criteria")
    criteria: list[Criterion] = []
    names: set[str] = set()
    for i, raw in enumerate(doc["criteria"]):
        field = f"criteria[{i}]"
        if raw["name"] in names:
            raise SpecError(f"duplicate criterion name {raw['name']!r}", file=shown,
                            field=f"{field}.name")
        names.add(raw["name"])
        try:
            metric = metrics.get_metric(raw["metric"],
                                        local_module=_evaluate_module(raw["metric"], path, root,
                                                                      f"{field}.metric"),
                                        higher_is_better=raw.get("higher_is_better"))
        except SpecError as exc:
            raise SpecError(exc.detail, file=shown, field=f"{field}.metric") from None
        if task is not None:
            try:
                metrics.check_applies(metric, task=task, has_gold=has_gold)
            except SpecError as exc:
                raise SpecError(f"criterion {raw['name']!r}: {exc.detail}", file=shown,
                                field=f"{field}.metric") from None
        scope = raw.get("scope", "overall")
        compare = raw["compare"]
        if metric.kind == "suite" and (scope != "overall" or compare != "value"):
            raise SpecError(
                f"metric {metric.name!r} is a run-level figure: it takes compare: value and "
                f"scope: overall (got compare: {compare}, scope: {scope})",
                file=shown, field=field)
        if scope in ("discovered", "traffic") and not metric.per_example_fn:
            raise SpecError(
                f"scope: {scope} needs a metric with per-example values; {metric.name!r} has none",
                file=shown, field=f"{field}.scope")
        if scope == "traffic" and (metric.needs_gold or compare.startswith("baseline")):
            raise SpecError(
                f"scope: traffic has no labels and no baseline: it takes a label-free metric "
                f"(agreement, teacher_match, teacher_chrf) compared with value or the teacher; "
                f"got {metric.name} with compare: {compare}", file=shown, field=field)
        lo, hi = raw.get("min"), raw.get("max")
        if lo is not None and hi is not None and lo > hi:
            raise SpecError(f"min {lo} is above max {hi}", file=shown, field=field)
        _check_model_keys(raw, metric, compare, scope, file=shown, field=field)

        def setting(key: str, default: Any, raw: Mapping[str, Any] = raw) -> Any:
            return raw.get(key, defaults.get(key, default))

        alpha = float(setting("alpha", 0.05))
        confidence = _confidence(setting("confidence", None), alpha, file=shown, field=field)
        criteria.append(Criterion(
            name=raw["name"], metric=metric.name, compare=compare, scope=scope, index=i,
            min=float(lo) if lo is not None else None, max=float(hi) if hi is not None else None,
            severity=setting("severity", "fail"), decision=setting("decision", "significant"),
            alpha=alpha, confidence=confidence,
            min_support=int(setting("min_support", 30)),
            line=lines[i] if i < len(lines) else None,
            against=str(raw.get("against", "current")),
            owner=raw.get("owner"), playbook=raw.get("playbook"),
            model=str(raw.get("model", "student")),
            teacher_invalid=str(setting("teacher_invalid", "wrong")),
        ))
    return RubricSpec(path=path, id=str(doc["id"]), version=doc["version"],
                      criteria=tuple(criteria), teacher_floor=doc.get("teacher_floor"),
                      notes=_confidence_notes(criteria, shown))


def _confidence(given: Any, alpha: float, *, file: str, field: str) -> float:
    """A criterion's CI level: as given, else ``1 - 2 alpha``, the two-sided interval whose
    ends are the one-sided tests at ``alpha`` (DESIGN, "Verdicts")."""
    if given is not None:
        return float(given)
    if alpha >= 0.5:
        raise SpecError(f"alpha {alpha:g} leaves no interval at the default confidence "
                        f"1 - 2 alpha; use an alpha below 0.5 or set confidence",
                        file=file, field=f"{field}.alpha")
    return 1.0 - 2.0 * alpha


def _confidence_notes(criteria: Iterable[Criterion], shown: str) -> tuple[str, ...]:
    """One note per (confidence, alpha) that prints an interval the verdict does not use."""
    odd: dict[tuple[float, float], list[str]] = {}
    for c in criteria:
        if c.decision == "significant" and abs(c.confidence - (1.0 - 2.0 * c.alpha)) > 1e-9:
            odd.setdefault((c.confidence, c.alpha), []).append(c.name)
    return tuple(
        f"{shown}: confidence {conf:g} with alpha {alpha:g} ({', '.join(names)}): the printed "
        f"interval is not the one the verdict uses (the one-sided test at alpha {alpha:g} is "
        f"the {100 * (1 - 2 * alpha):g}% interval's); leave confidence out to print that one"
        for (conf, alpha), names in odd.items())


def _check_model_keys(raw: Mapping[str, Any], metric: Any, compare: str, scope: str, *,
                      file: str, field: str) -> None:
    """``model: teacher`` reads the teacher's own metric: compare value, the teacher's outputs
    alone; ``teacher_invalid`` on a criterion applies to teacher-delta/ratio checks."""
    if raw.get("model", "student") == "teacher":
        if compare != "value":
            raise SpecError(f"model: teacher reads the teacher's own metric: it takes compare: "
                            f"value (got {compare})", file=file, field=f"{field}.model")
        if metric.kind == "suite" or "teacher" in metric.needs:
            raise SpecError(f"model: teacher needs a metric of the teacher's own outputs (e.g. "
                            f"invalid_rate, truncated_rate, mean_output_tokens, accuracy); "
                            f"{metric.name!r} is not one", file=file, field=f"{field}.model")
        if scope not in ("overall", "slices", "all"):
            raise SpecError(f"model: teacher takes scope overall, slices or all (got {scope})",
                            file=file, field=f"{field}.scope")
    if "teacher_invalid" in raw and not compare.startswith("teacher"):
        raise SpecError(f"teacher_invalid applies to teacher_delta / teacher_ratio checks "
                        f"(got compare: {compare})", file=file, field=f"{field}.teacher_invalid")


def _evaluate_module(metric: str, rubric: Path, root: Path | None, field: str) -> Path | None:
    """The local module of an ``evaluate:<path>`` metric, resolved against the rubric file.

    None when the metric is not an evaluate module or names no local file (a hub module).
    """
    if not metric.startswith("evaluate:"):
        return None
    ref = metric.split(":", 1)[1].strip()
    if not ref or not (rubric.parent / ref).exists():
        return None
    return resolve_path(ref, source=rubric, root=root or find_root(rubric), field=field)


def load_suite(path: Path, root: Path | None = None) -> SuiteSpec:
    """Load and validate a suite file, its rubric, and every path it names."""
    path = path.resolve()
    root = (root or find_root(path)).resolve()
    doc, _ = read_document(path)
    validate_document(doc, "suite", path)
    shown = display_path(path)
    task = doc["task"]
    labels = tuple(doc.get("labels") or ())
    if task == "classification" and not labels:
        raise SpecError("a classification suite needs its label set", file=shown, field="labels")
    data = _data_spec(doc["data"], source=path, root=root, field="data")
    distill = None
    if "distillation_data" in doc:
        distill = _data_spec(doc["distillation_data"], source=path, root=root,
                             field="distillation_data")
    traffic = None
    if "traffic_data" in doc:
        # Traffic is the same kind of rows as the eval data: what it does not say, it inherits
        # (id, input, features, prompt), so drift compares like with like. It has no label.
        inherited = {k: doc["data"][k] for k in ("id", "input", "features", "prompt")
                     if k in doc["data"]}
        traffic = _data_spec({**inherited, **doc["traffic_data"]}, source=path, root=root,
                             field="traffic_data")
    model_kw = {"source": path, "root": root, "task": task, "prompt": data.prompt}
    teacher = _model_spec(doc["teacher"], field="teacher", **model_kw)
    students: dict[str, ModelSpec] = {}
    if "student" in doc:
        students["student"] = _model_spec(doc["student"], field="student", **model_kw)
    for name, raw in (doc.get("students") or {}).items():
        if name == "student" and "student" in students:
            raise SpecError("candidate name 'student' is reserved for the gated student",
                            file=shown, field="students.student")
        students[name] = _model_spec(raw, field=f"students.{name}", **model_kw)
    rubric_path = resolve_path(doc["rubric"], source=path, root=root, field="rubric")
    rubric = load_rubric(rubric_path, root, task=task, has_gold=data.label is not None)
    for c in rubric.criteria:
        if c.scope == "traffic" and traffic is None:
            raise SpecError(f"criterion {c.name!r} has scope: traffic, but the suite {shown} "
                            "declares no traffic_data", file=display_path(rubric_path),
                            field=f"criteria[{c.index}].scope")
        if c.scope == "discovered" and (doc.get("discovery") or {}).get("enabled") is False:
            raise SpecError(f"criterion {c.name!r} has scope: discovered, but the suite {shown} "
                            "switches the pocket search off (discovery.enabled: false)",
                            file=display_path(rubric_path), field=f"criteria[{c.index}].scope")
    if "baseline" in doc:
        baseline = resolve_path(doc["baseline"], source=path, root=root, field="baseline",
                                must_exist=False)
    else:
        baseline = root / "baselines" / f"{doc['name']}.json"
    slices = _slices(doc.get("slices") or (), shown)
    disc = doc.get("discovery") or {}
    feats = disc.get("features")
    discovery = DiscoverySpec(
        features=tuple(feats) if feats is not None else None,
        max_predicates=int(disc.get("max_predicates", 2)),
        min_support=int(disc.get("min_support", 30)),
        include_length=bool(disc.get("include_length", False)),
        enabled=bool(disc.get("enabled", True)),
        n_bins=int(disc.get("n_bins", 4)),
    )
    cov = doc.get("coverage") or {}
    coverage = CoverageSettings(
        enabled=bool(cov.get("enabled", True)), embeddings=str(cov.get("embeddings", "tfidf")),
        quantile=float(cov.get("quantile", 0.95)), rare_share=float(cov.get("rare_share", 0.2)))
    # economics: checked now, so a bad price or batch size fails before any model runs.
    from harness.economics.settings import parse_economics

    economics = parse_economics(doc["economics"], shown) if doc.get("economics") else None
    judges = _judges(doc, source=path, root=root, data=data, task=task)
    _check_judge_metrics(rubric, judges, rubric_path)
    return SuiteSpec(
        path=path, root=root, name=doc["name"], version=str(doc["version"]), task=task,
        data=data, labels=labels, teacher=teacher, students=students, rubric=rubric,
        baseline_path=baseline, slices=slices, discovery=discovery, coverage=coverage,
        distillation_data=distill, traffic_data=traffic, economics=economics, judges=judges,
    )


def _judges(doc: Mapping[str, Any], *, source: Path, root: Path, data: DataSpec,
            task: str) -> dict[str, JudgeSpec]:
    """The ``judges:`` section: each judge's model, prompt file (placeholders checked now, so a
    prompt that cannot be filled fails before any model runs), mode, verdict and scale."""
    import hashlib

    shown = display_path(source)
    entries = doc.get("judges") or {}
    labels = doc.get("judge_labels") or {}
    for name in labels:
        if name not in entries:
            raise SpecError(f"judge_labels names {name!r}, which is not a judge of this suite "
                            f"(judges: {', '.join(entries) or 'none'})", file=shown,
                            field=f"judge_labels.{name}")
    if entries and task != "generation":
        raise SpecError("judges grade open-ended answers: they need task: generation",
                        file=shown, field="judges")
    fields = set(data.features) | set(data.input) | ({data.label} if data.label else set()) \
        | {data.id}
    out: dict[str, JudgeSpec] = {}
    for name, raw in entries.items():
        where = f"judges.{name}"
        mode = raw.get("mode", "pairwise")
        scale = raw.get("scale") or {}
        lo, hi = float(scale.get("min", 1)), float(scale.get("max", 10))
        if lo >= hi:
            raise SpecError(f"scale min {lo:g} must be below max {hi:g}", file=shown,
                            field=f"{where}.scale")
        model = _model_spec(raw["model"], source=source, root=root, field=f"{where}.model",
                            task="generation")
        prompt_path = resolve_path(raw["prompt"], source=source, root=root, field=f"{where}.prompt")
        if not prompt_path.is_file():
            raise SpecError(f"prompt file {raw['prompt']!r} not found "
                            f"(resolved to {display_path(prompt_path)})", file=shown,
                            field=f"{where}.prompt")
        text = prompt_path.read_text("utf-8")
        from harness.data import prompt_fields

        names = prompt_fields(text, file=display_path(prompt_path), field=f"{where}.prompt")
        own = JUDGE_PLACEHOLDERS[mode]
        unknown = [n for n in names if n not in own and n not in fields]
        if unknown:
            raise SpecError(f"{display_path(prompt_path)}: placeholder {{{unknown[0]}}} is "
                            f"neither one of {', '.join('{' + f + '}' for f in sorted(own))} nor "
                            f"a field of the data ({', '.join(sorted(fields))})", file=shown,
                            field=f"{where}.prompt")
        needed = {"answer_a", "answer_b"} if mode == "pairwise" else {"answer"}
        if not needed <= set(names):
            raise SpecError(f"{display_path(prompt_path)}: a {mode} prompt must show "
                            f"{' and '.join('{' + n + '}' for n in sorted(needed))}",
                            file=shown, field=f"{where}.prompt")
        if "reference" in names and data.label is None:
            raise SpecError(f"{display_path(prompt_path)}: {{reference}} needs data.label (the "
                            "reference field)", file=shown, field=f"{where}.prompt")
        default = PAIRWISE_VERDICT if mode == "pairwise" else POINTWISE_VERDICT
        verdict = raw.get("verdict", default)
        try:
            rx = compile_pattern(verdict)
        except re.error as exc:
            raise SpecError(f"invalid verdict pattern {verdict!r}: {exc}", file=shown,
                            field=f"{where}.verdict") from None
        if rx.groups > 1:
            raise SpecError(f"verdict pattern {verdict!r} has {rx.groups} groups; the verdict "
                            "is its one group (or the whole match)", file=shown,
                            field=f"{where}.verdict")
        label_field = labels.get(name)
        out[name] = JudgeSpec(
            name=name, model=model, prompt_path=prompt_path, prompt=text,
            prompt_sha256=hashlib.sha256(text.encode()).hexdigest(), mode=mode,
            verdict=verdict, swap=bool(raw.get("swap", True)), scale=(lo, hi), field=where,
            labels_field=label_field)
    return out


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``re.compile`` without its FutureWarning about ``[[`` (a verdict pattern often holds
    brackets): a bad pattern is a ``re.error``, a dubious one compiles as Python reads it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


def _check_judge_metrics(rubric: RubricSpec, judges: Mapping[str, JudgeSpec],
                         rubric_path: Path) -> None:
    """A criterion on ``judge:<name>`` (or a judge health figure) must name a judge of the
    suite, and a judge's metric of its own mode."""
    from harness.metrics import judge_metric_parts

    for c in rubric.criteria:
        parts = judge_metric_parts(c.metric)
        if parts is None:
            continue
        family, name = parts
        field = f"criteria[{c.index}].metric"
        if name not in judges:
            raise SpecError(f"criterion {c.name!r}: {c.metric} names judge {name!r}, which the "
                            f"suite does not declare (judges: {', '.join(judges) or 'none'})",
                            file=display_path(rubric_path), field=field)
        if c.scope == "traffic":
            raise SpecError(f"criterion {c.name!r}: {c.metric} with scope: traffic — judges "
                            "grade the eval data's answers only; gate the judge at overall, "
                            "slices, all or discovered", file=display_path(rubric_path),
                            field=f"criteria[{c.index}].scope")
        pairwise_only = family in ("judge_consistency", "judge_first_preferred",
                                   "judge_longer_preferred", "judge_lc")
        if pairwise_only and judges[name].mode != "pairwise":
            raise SpecError(f"criterion {c.name!r}: {family} is a figure of a pairwise judge; "
                            f"{name} is {judges[name].mode}", file=display_path(rubric_path),
                            field=field)
        if family == "judge_agreement" and judges[name].labels_field is None:
            raise SpecError(f"criterion {c.name!r}: judge_agreement:{name} needs "
                            f"judge_labels.{name} (a data field with a person's verdicts)",
                            file=display_path(rubric_path), field=field)


def _slices(entries: Iterable[Mapping[str, Any]], shown: str) -> tuple[SliceSpec, ...]:
    """The ``slices:`` entries, named and ``by:`` alike, as :class:`SliceSpec`."""
    slices: list[SliceSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        field = f"slices[{i}]"
        for key, cond in (raw.get("where") or {}).items():
            _check_condition(cond, file=shown, field=f"{field}.where.{key}")
        if "name" in raw:
            if raw["name"] == "overall" or raw["name"] in seen:
                raise SpecError(f"slice name {raw['name']!r} is reserved or used twice",
                                file=shown, field=f"{field}.name")
            seen.add(raw["name"])
            by: tuple[str, ...] = ()
        else:
            by = (raw["by"],) if isinstance(raw["by"], str) else tuple(raw["by"])
        slices.append(SliceSpec(name=raw.get("name"), where=dict(raw.get("where") or {}),
                                field=field, owner=raw.get("owner"),
                                playbook=raw.get("playbook"), by=by,
                                min_support=raw.get("min_support")))
    return tuple(slices)


def _check_condition(cond: Any, *, file: str, field: str) -> None:
    if isinstance(cond, Mapping) and "regex" in cond:
        try:
            re.compile(cond["regex"])
        except re.error as exc:
            raise SpecError(f"invalid regex {cond['regex']!r}: {exc}", file=file,
                            field=f"{field}.regex") from None


def suite_files(target: Path) -> list[Path]:
    """The suite files a ``--distill-suite`` / ``distill run`` argument names.

    A file is taken as is; a folder gives its ``*.yaml``, ``*.yml`` and ``*.json`` files and
    its ``*/suite.yaml`` files, sorted.
    """
    if not target.exists():
        raise SpecError("no such suite file or folder", file=display_path(target))
    if target.is_file():
        return [target.resolve()]
    found: list[Path] = []
    for entry in sorted(target.iterdir()):
        if entry.is_file() and entry.suffix in (".yaml", ".yml", ".json"):
            found.append(entry.resolve())
        elif entry.is_dir():
            for name in ("suite.yaml", "suite.yml", "suite.json"):
                if (entry / name).is_file():
                    found.append((entry / name).resolve())
                    break
    return found


def detect_kind(doc: Any, path: Path) -> str:
    """Which schema a document is for: suite, rubric, baseline, report or predictions."""
    if path.suffix == ".jsonl":
        return "predictions"
    if isinstance(doc, Mapping):
        if "criteria" in doc:
            return "rubric"
        if "suites" in doc and "harness_version" in doc:
            return "report"
        if "outcomes" in doc or ("suite" in doc and "student" in doc and "slices" in doc):
            return "baseline"
        if "teacher" in doc or "task" in doc or "data" in doc:
            return "suite"
    raise SpecError("cannot tell what this file is (expected a suite, rubric, baseline, "
                    "report or predictions file)", file=display_path(path))


def validate_file(path: Path, kind: str | None = None) -> str:
    """Validate any suite, rubric, baseline, report or predictions file; returns its kind.

    A suite is loaded fully (its rubric and paths too).
    """
    path = Path(path)
    if path.suffix in (".jsonl", ".parquet"):  # a predictions file, line (row) by line
        _validate_jsonl(path)
        return "predictions"
    doc, _ = read_document(path)
    kind = kind or detect_kind(doc, path)
    if kind == "suite":
        load_suite(path)
    elif kind == "rubric":
        load_rubric(path)
    else:
        validate_document(doc, kind, path)
    return kind


def _validate_jsonl(path: Path) -> None:
    from harness.data import read_rows
    from harness.errors import DataError

    shown = display_path(path)
    try:
        rows = read_rows(path)
    except DataError as exc:
        raise SpecError(exc.detail, file=shown, field=exc.field) from None
    for lineno, obj in rows:
        try:
            validate_document(obj, "predictions", path)
        except SpecError as exc:
            raise SpecError(exc.detail, file=shown, field=f"line {lineno}: {exc.field}") from None
