"""The package's shape: every module imports alone, and the module-level import graph has no circle."""
import ast
import subprocess
import sys
from pathlib import Path

XFER = Path(__file__).resolve().parents[1] / "xfer"


def module_name(path: Path) -> str:
    parts = path.relative_to(XFER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for p in XFER.rglob("*.py"))


def top_level_imports(path: Path) -> set[str]:
    """xfer modules imported at module level."""
    return imports_in(ast.parse(path.read_text()).body)


def all_imports(path: Path) -> set[str]:
    """xfer modules imported anywhere in a module, inside functions too (a deferred import still ties the two), and
    the packages those live in (importing xfer.data.root runs xfer/data/__init__.py first)."""
    names = imports_in(ast.walk(ast.parse(path.read_text())))
    return names | {p for n in names for p in parent_packages(n) if p in MODULES}


def parent_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(2, len(parts))]


def imports_in(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xfer"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("xfer"))
    return {n for n in names if n in MODULES}


def import_graph() -> dict[str, set[str]]:
    """module → the xfer modules it imports, at module level or inside functions; a submodule's import of its own
    package is no edge (Python does it)."""
    graph = {}
    for path in XFER.rglob("*.py"):
        name = module_name(path)
        graph[name] = {m for m in all_imports(path) if m != name and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return []


def test_the_module_import_graph_has_no_circle():
    assert find_cycle(import_graph()) == []


def test_the_cycle_finder_sees_a_deferred_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from xfer.data.root import data_root\n")
    assert {"xfer.data.root", "xfer.data"} <= all_imports(module)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


REGISTRY_MODULES = {"xfer.data", "xfer.data.records", "xfer.data.xrv_datasets", "xfer.inits", "xfer.models"}


def test_config_is_the_schema_and_imports_no_registry():
    assert top_level_imports(XFER / "config.py") <= {"xfer.source"}, \
        "config.py is ground level: it imports no xfer module but the init-source parser (itself ground level)"
    assert top_level_imports(XFER / "source.py") == set()
    anywhere = {node.module for node in ast.walk(ast.parse((XFER / "config.py").read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not anywhere & REGISTRY_MODULES, "name checks against the registries belong in xfer.load"


def test_every_module_imports_alone_in_a_fresh_interpreter():
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'xfer' or m.startswith('xfer.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=-3))\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
