"""Guards of the architecture: no import cycle in the package; the plugin imports nothing heavy;
only the glue imports pytest."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
#: The pytest glue (DESIGN "Architecture"): the only modules that may import pytest.
GLUE = {"harness/plugin.py", "harness/items.py"}
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
    assert GLUE <= set(modules())


# --------------------------------------------------------------------------- import cycles

def import_graph(package: Path, name: str = "harness") -> dict[str, set[str]]:
    """Module -> the package's modules it imports, from the AST.

    Every import counts wherever it stands: at module level, inside a function (a lazy
    import) or under ``if TYPE_CHECKING:``. ``from pkg import mod`` is an edge to ``pkg.mod``
    when that is a module, else to ``pkg``; relative imports are resolved. A module importing
    its own package is no edge (Python has run the package's ``__init__`` already).
    """
    mods: dict[str, Path] = {}
    for p in sorted(package.rglob("*.py")):
        parts = (name, *p.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            for t in targets:
                if t in mods and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, "utf-8")
    return root


def test_the_cycle_check_sees_a_planted_cycle_through_lazy_and_type_checking_imports(tmp_path):
    root = _package(tmp_path, {
        "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.top import T\n",
        "mid.py": "def f():\n    from . import low\n",
        "top.py": "from pkg.mid import f\n",
        "leaf.py": "import os\n",
        "sub/__init__.py": "from pkg.sub.a import x\n",
        "sub/a.py": "from pkg import sub\nfrom .. import leaf\nx = 1\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.low"] == {"pkg.top"} and graph["pkg.mid"] == {"pkg.low"}
    assert graph["pkg.sub.a"] == {"pkg.leaf"}  # its own package is no edge
    assert cycles(graph) == [["pkg.low", "pkg.mid", "pkg.top"]]
    (root / "low.py").write_text("import os\n", "utf-8")
    assert cycles(import_graph(root, "pkg")) == []


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


def _top_level_names(path: Path) -> set[str]:
    """What a module defines itself: its functions, classes and assigned names."""
    names: set[str] = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def reexported_imports(package: Path, name: str = "harness") -> list[str]:
    """``from harness.m import x`` where module ``m`` (not a package) does not define ``x``
    itself: a name taken through a module that merely imports it, which keeps an arrow (and,
    once, a cycle) that nothing needs. A package's ``__init__`` is its public API: exempt."""
    modules = {".".join((name, *p.relative_to(package).with_suffix("").parts)): p
               for p in sorted(package.rglob("*.py")) if p.name != "__init__.py"}
    defined = {m: _top_level_names(p) for m, p in modules.items()}
    found = []
    for p in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in defined:
                found += [f"{p.relative_to(package.parent).as_posix()}:{node.lineno}: "
                          f"{node.module}.{a.name}" for a in node.names
                          if a.name not in defined[node.module]
                          and f"{node.module}.{a.name}" not in modules]
    return found


def test_names_are_imported_from_the_module_that_defines_them():
    assert reexported_imports(PACKAGE) == []


def test_the_reexport_guard_sees_a_name_taken_through_another_module(tmp_path):
    root = _package(tmp_path, {"paths.py": "def where():\n    pass\n",
                               "spec.py": "from pkg.paths import where\n",
                               "data.py": "from pkg.spec import where\nfrom pkg.paths import where\n"})
    assert reexported_imports(root, "pkg") == ["pkg/data.py:1: pkg.spec.where"]


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
