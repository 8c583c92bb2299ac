"""Guards of the architecture: the plugin imports nothing heavy; only the glue imports pytest."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
GLUE = {"harness/plugin.py", "harness/items.py", "harness/testing.py"}
TORCH_ADAPTER = {"harness/models/transformers.py"}


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
