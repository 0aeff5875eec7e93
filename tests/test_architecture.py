"""The import structure the README's "What is where" describes, proven from the source.

- No import cycle among the modules of the apps: every ``import`` statement counts, the ones inside functions
  too (a function-level import that dodges a circle is still a circle). Importing ``a.b.c`` runs the ``__init__``
  of ``a`` and ``a.b`` as well, so those count when they import something.
- No module imports a name starting with ``_`` from another module, nor reaches one through an imported module
  (``services._lock``). A private module (``channels/adapters/_common.py``) is shared only inside its package.

The layer order itself (config → accounts → wallets → channels, risk → compliance → withdrawals → operations) is
import-linter's job (``make lint``, contracts in pyproject.toml); this test needs nothing but the source.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "config",
    "workdays",
    "accounts",
    "webhooks",
    "wallets",
    "channels",
    "risk",
    "compliance",
    "withdrawals",
    "operations",
)
# Above every app; they may import anything, and nothing imports them. Their private-name use is checked too.
ABOVE = ("simulation", "scripts")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of ours
    name: str  # the imported name ("" for ``import a.b``)
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(packages: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).parts
            if "migrations" in rel or "tests" in rel:
                continue
            found[_module_name(path)] = path
    return found


MODULES = _sources(APPS)
EVERYTHING = {**MODULES, **_sources(ABOVE)}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every import of one of ``known`` in the module, wherever it stands (top level, function, class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield Import(module, alias.name, "", node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:
                    yield Import(module, submodule, "", node.lineno)
                elif source in known:
                    yield Import(module, source, alias.name, node.lineno)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        own_packages = set(_ancestors(module))
        for imp in imports_of(module, path, known):
            graph[module].add(imp.target)
            # Importing a.b.c runs a/__init__ and a/b/__init__ first (except the packages we are already in).
            graph[module].update(p for p in _ancestors(imp.target) if p in known and p not in own_packages)
    for module in graph:
        graph[module].discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_module_outside_its_package(importer: str, target: str) -> bool:
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            package = ".".join(parts[:i])
            return not (importer == package or importer.startswith(package + "."))
    return False


def private_crossings(known: dict[str, Path]) -> list[str]:
    found = []
    for module, path in known.items():
        bound: dict[str, str] = {}  # local name -> one of our modules
        for imp in imports_of(module, path, known):
            if imp.target != module and _private(imp.name):
                found.append(f"{module}:{imp.line} imports {imp.name} from {imp.target}")
            if _private_module_outside_its_package(module, imp.target):
                found.append(f"{module}:{imp.line} imports the private module {imp.target}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(module, path, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in known:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in known:
                        bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and bound[node.value.id] != module
                and _private(node.attr)
            ):
                found.append(f"{module}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_the_apps_are_found() -> None:
    assert "withdrawals.services" in MODULES and "wallets.services" in MODULES and "config.errors" in MODULES
    assert not any(".migrations" in m or ".tests" in m for m in MODULES)


def test_no_import_cycle_among_the_apps_modules() -> None:
    found = cycles(import_graph(MODULES))
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_no_module_imports_a_private_name_of_another() -> None:
    found = private_crossings(EVERYTHING)
    assert not found, "private names crossing a module:\n" + "\n".join(found)


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(graph) == [["a.x", "a.y", "a.z"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
