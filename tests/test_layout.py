"""The house rules of the package layout, checked on the source: no import cycle (counting
imports inside functions), no private name imported across modules, small modules, and no
checkout-relative folder named inside the package."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "topfive"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path):
    """(imported module, names) for every `from topfive... import` and `import topfive...` in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "topfive":
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "topfive":
                    yield alias.name, []


def import_graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for module, names in imports(path):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            targets = submodules if names and len(submodules) == len(names) else [module, *submodules]
            graph[name].update(t for t in targets if t in MODULES and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules_or_sub_packages():
    graph = import_graph()
    assert find_cycle(graph) is None
    top = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    packages: dict[str, set[str]] = {}
    for a, targets in graph.items():
        packages.setdefault(top(a), set()).update(top(b) for b in targets if top(b) != top(a))
    for p in list(packages.values()):
        for b in p:
            packages.setdefault(b, set())
    assert find_cycle(packages) is None


def test_no_private_name_imported_across_modules():
    crossing = [
        f"{name}: {module}.{n}"
        for name, path in MODULES.items()
        for module, names in imports(path)
        for n in names
        if n.startswith("_") and module != name
    ]
    assert crossing == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_package_names_no_checkout_relative_folder():
    named = [name for name, path in MODULES.items() if "../shared" in path.read_text(encoding="utf-8")]
    assert named == []
