"""The layout's rules, checked on the source: which wing may import which, where torch and
pytorch-forecasting may appear, that the core never imports streamlit, and that no module reaches
into another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "argus_core"
HEAVY = ("torch", "lightning", "pytorch_forecasting", "safetensors")
VIEWS = ("risk", "dashboard", "replay", "charts", "console", "quality")  # what the pages draw
# wing -> the argus_core wings it must never import
FORBIDDEN = {
    "data": ("model", "runs", "live", "cli", *VIEWS),
    "model": ("runs", "live", "cli", *VIEWS),
    "runs": ("live", "cli", *VIEWS),
    "live": ("cli",),
    **{view: ("live", "cli") for view in VIEWS if view != "risk"},
    "risk": ("model", "runs", "live", "cli", "dashboard", "replay", "charts", "console", "quality"),
    "alerting": ("model", "runs", "live", "cli", "dashboard", "replay", "charts", "console", "quality"),
}
TORCH_FREE_MODEL_PARTS = ("config", "spec", "layout", "registry", "threads", "serving")


def _sources(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        path = ROOT / folder
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return files


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file (or only those run at import time)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _wing(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return parts[0]


def _core_wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "argus_core" and len(parts) > 1 else None


def test_wings_import_one_way():
    wrong = []
    for path in _sources("argus_core"):
        forbidden = FORBIDDEN.get(_wing(path), ())
        for line, module in _imports(path):
            if _core_wing(module) in forbidden:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_only_the_model_wing_imports_torch_or_pytorch_forecasting():
    wrong = []
    for path in _sources("argus_core", "ui", "app_pages", "app.py"):
        if path.is_relative_to(CORE / "model"):
            continue
        for line, module in _imports(path):
            if module.split(".")[0] in HEAVY:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_torch_free_parts_of_the_model_wing_stay_torch_free():
    wrong = []
    for name in TORCH_FREE_MODEL_PARTS:
        path = CORE / "model" / f"{name}.py"
        for line, module in _imports(path, top_level_only=True):
            if module.split(".")[0] in HEAVY:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_every_wing_says_what_it_owns_and_may_import():
    for init in [CORE / "__init__.py", *sorted(CORE.glob("*/__init__.py"))]:
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.relative_to(ROOT)} needs a docstring saying what the wing owns"
        if init.parent != CORE:
            assert "May import" in doc, f"{init.relative_to(ROOT)} should say what it may import"


def test_the_core_never_imports_streamlit():
    for path in _sources("argus_core"):
        assert not any(m.split(".")[0] == "streamlit" for _, m in _imports(path)), path
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _sources("argus_core")
                     if p.name != "__main__.py")
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_the_torch_free_parts_load_without_torch():
    """The CLI's parser, the registry, specs and the run store must not pull torch in: the pages
    and `python -m argus_core --help` stay quick."""
    code = ("import sys\nimport argus_core.cli.main, argus_core.model.registry, argus_core.model.spec, "
            "argus_core.model.config, argus_core.model.threads, argus_core.runs.store, argus_core.runs.jobs, "
            "argus_core.dashboard, argus_core.risk\n"
            "print(sorted(m for m in ('torch', 'lightning', 'pytorch_forecasting') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_no_module_reaches_into_another_modules_private_names():
    wrong = []
    for path in _sources("argus_core", "ui", "app_pages", "app.py", "tests", "bench"):
        tree = ast.parse(path.read_text())
        modules = set()  # names bound to argus_core / ui modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("argus_core", "ui"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
                    modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)
