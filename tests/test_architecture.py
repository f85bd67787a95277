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
# the wings in import order: a wing may import those before it, never those after it
# (views and runs are peers: views reads the run store for the console, runs never reads a view)
ORDER = ("data", "anomaly", "model", "fleet", "views", "runs", "access", "live", "cli")
FORBIDDEN = {wing: ORDER[i + 1:] for i, wing in enumerate(ORDER)}
FORBIDDEN["views"] = ("live", "cli")
FORBIDDEN.update({shared: ORDER for shared in ("errors", "atomic")})  # the two modules every wing uses
TORCH_FREE_MODEL_PARTS = ("config", "spec", "layout", "registry", "threads", "serving", "forecaster")
# wings whose package is their front: other wings import the package, or only these of its modules
PUBLIC_PARTS = {"anomaly": (), "fleet": ("risk", "alerting", "live_state", "thresholds"),
                "model": ("registry", "config", "threads")}


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


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_module_lives_in_a_wing():
    loose = sorted(p.name for p in CORE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "atomic.py", "errors.py"], loose


def test_other_wings_use_a_wing_through_its_front():
    """``anomaly``, ``fleet`` and ``model`` are used by the names their package exports (and their
    named public modules); their inner modules are theirs alone."""
    wrong = []
    for path in _sources("argus_core", "ui", "app_pages", "app.py"):
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) < 3 or parts[0] != "argus_core" or parts[1] not in PUBLIC_PARTS:
                continue
            inner = (CORE / parts[1] / f"{parts[2]}.py").exists()
            if inner and parts[2] not in PUBLIC_PARTS[parts[1]] and not path.is_relative_to(CORE / parts[1]):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_in_a_circle():
    """Strongly connected groups of the import graph (every import, deferred ones included; a
    module importing its own package's ``__init__`` is not an edge: Python runs that first anyway)."""
    modules = {_module(p): p for p in _sources("argus_core")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for _, imported in _imports(path):
            if imported in modules and imported != name and not name.startswith(imported + "."):
                graph[name].add(imported)
    circles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert not circles, circles


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


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
            "argus_core.views.dashboard, argus_core.fleet.risk\n"
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
