"""Guards of the architecture: the plugin imports nothing heavy; only the glue imports pytest."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
GLUE = {"harness/plugin.py", "harness/items.py", "harness/testing.py"}
TORCH_ADAPTER = {"harness/models/_hf.py", "harness/models/transformers.py",
                 "harness/models/transformers_generation.py"}
OPENAI_ADAPTER = {"harness/models/openai_compat.py"}
#: Where branching on a suite's task or a model's type belongs.
TASK_AND_MODEL_HOMES = ("harness/tasks.py", "harness/models/", "harness/spec.py",
                        "harness/spec_types.py")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth of the code."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def modules() -> dict[str, set[str]]:
    return {f"harness/{p.relative_to(PACKAGE).as_posix()}": imported_modules(p)
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_only_the_glue_imports_pytest():
    offenders = sorted(name for name, imports in modules().items()
                       if imports & {"pytest", "_pytest", "pluggy"} and name not in GLUE)
    assert offenders == []


def test_only_the_transformers_adapter_imports_torch_or_transformers():
    heavy = {"torch", "transformers", "safetensors", "accelerate"}
    offenders = sorted(name for name, imports in modules().items()
                       if imports & heavy and name not in TORCH_ADAPTER)
    assert offenders == []


def test_the_glue_is_where_the_architecture_says():
    assert {"harness/plugin.py", "harness/items.py"} <= set(modules())


def _imported_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             "print(' '.join(sorted(m for m in ('torch', 'transformers', 'safetensors', 'evaluate')"
             " if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         check=True)
    return set(out.stdout.split())


def test_importing_the_plugin_imports_neither_torch_nor_transformers():
    assert _imported_after("import harness.plugin") == set()


def test_loading_a_suite_on_prediction_files_imports_nothing_heavy():
    tiny = Path(__file__).resolve().parents[1] / "data" / "tinyrepo" / "suites" / "tiny.yaml"
    code = ("from harness.runner import prepare_suite\n"
            f"prepare_suite({str(tiny)!r})\n"
            "import harness.cli, harness.session, harness.gate, harness.metrics")
    assert _imported_after(code) == set()


def test_only_the_endpoint_adapter_imports_openai():
    offenders = sorted(name for name, imports in modules().items()
                       if "openai" in imports and name not in OPENAI_ADAPTER)
    assert offenders == []


def _branches_on(path: Path, attrs: set[str]) -> list[str]:
    """``x.task`` / ``x.type`` compared with a literal name (``spec.task == "generation"``).

    Comparing two suites' tasks with each other (``a.task != b.task``) is no branch on a task.
    """
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = (node.left, *node.comparators)
            named = any(isinstance(s, ast.Attribute) and s.attr in attrs for s in sides)
            literal = any(isinstance(s, ast.Constant) or (
                isinstance(s, (ast.Tuple, ast.List, ast.Set))
                and all(isinstance(e, ast.Constant) for e in s.elts)) for s in sides)
            if named and literal:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_branching_on_the_task_or_the_model_type_outside_tasks_and_models():
    offenders: list[str] = []
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = f"harness/{p.relative_to(PACKAGE).as_posix()}"
        if rel.startswith(TASK_AND_MODEL_HOMES):
            continue
        offenders.extend(_branches_on(p, {"task", "type"}))
    assert offenders == []


def test_the_guard_sees_a_branch(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(spec):\n    return 1 if spec.task == 'generation' else 2\n")
    assert _branches_on(bad, {"task"}) == ["bad.py:2: spec.task == 'generation'"]


def test_every_model_type_of_the_schema_is_registered_lazily():
    import json

    from harness.models import model_types

    schema = json.loads((PACKAGE / "schemas" / "suite.schema.json").read_text("utf-8"))
    assert set(schema["$defs"]["model"]["properties"]["type"]["enum"]) == set(model_types())
    # Registering imports no adapter module (each is imported when a suite names its type).
    loaded = _imported_after("import harness.models, sys\n"
                             "assert not any(m.startswith('harness.models.') and m not in "
                             "('harness.models.base',) for m in sys.modules), sorted(sys.modules)")
    assert loaded == set()


def _harness_imports(rel: str) -> set[str]:
    """The ``harness.*`` modules a module imports, at any depth (lazy imports included)."""
    tree = ast.parse((PACKAGE.parent / rel).read_text("utf-8"))
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness")}


def test_data_does_not_import_spec_back():
    # spec.py loads suites and uses data.py; path helpers live in paths.py for both.
    assert "harness.spec" not in _harness_imports("harness/data.py")
    assert "harness.spec" not in _harness_imports("harness/paths.py")


def test_one_home_for_hashes_wilson_and_breach_tests():
    defs: dict[str, list[str]] = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in (
                    "file_sha256", "wilson_interval", "_wilson", "breaches", "display_path"):
                defs.setdefault(node.name, []).append(p.name)
    assert defs == {"file_sha256": ["paths.py"], "wilson_interval": ["stats.py"],
                    "breaches": ["stats.py"], "display_path": ["paths.py"]}
