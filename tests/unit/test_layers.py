"""The import graph of controller/, apps/, lab/ and bench/, read with ast (nothing is imported):
no cycle between modules, and controller's packages import only downward.

Every import counts, also one inside a function or under `if TYPE_CHECKING:`: hiding an arrow
does not take it away. The layers, from the bottom:

    model  <-  pipeline  <-  core  <-  southbound, northbound, ha, bgp, cli  <-  shell  <-  apps

controller/version.py sits below everything. The outer packages (southbound ... cli) do not import
one another, except the arrows in SIDEWAYS, each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("controller", "apps", "lab", "bench")
LAYERS = {"version": 0, "model": 1, "pipeline": 2, "core": 3,
          "southbound": 4, "northbound": 4, "ha": 4, "bgp": 4, "cli": 4, "shell": 5}
APPS = 6
SIDEWAYS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))}


def _imported(tree: ast.AST, here: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                pkg = here.split(".")[: len(here.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*pkg, base] if base else pkg)
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        out = set()
        for target in _imported(tree, name, path.name == "__init__.py"):
            # the module itself, else the nearest enclosing module (`from a.b import name`)
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and not (mods[target].name == "__init__.py" and name.startswith(target + ".")):
                out.add(target)
        edges[name] = out
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def layer(module: str) -> tuple[str, int] | None:
    """(package, rank) of a module of controller/ or apps/; None for lab/ and bench/ (harness)."""
    parts = module.split(".")
    if parts[0] == "apps":
        return "apps", APPS
    if parts[0] != "controller" or len(parts) < 2:
        return None
    return parts[1], LAYERS[parts[1]]


def test_the_graph_sees_imports_of_every_kind(tmp_path):
    tree = ast.parse("import a.b\nfrom c import d\nif X:\n    from e.f import g\ndef h():\n    from . import i\n")
    assert set(_imported(tree, "pkg.mod", False)) == {"a.b", "c", "c.d", "e.f", "e.f.g", "pkg", "pkg.i"}


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back():
    found = cycles(graph())
    assert not found, "import cycles (a TYPE_CHECKING or local import does not hide one):\n" + "\n".join(
        " -> ".join(c) for c in found)


def test_every_package_of_controller_has_a_layer():
    packages = {p.name for p in (REPO / "controller").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages | {"version"} == set(LAYERS)


def test_imports_point_down_the_layers():
    wrong = []
    for src, targets in graph().items():
        here = layer(src)
        if here is None:
            continue
        for dst in targets:
            there = layer(dst)
            if there is None:
                wrong.append(f"{src} -> {dst} (the harness)")
            elif there[1] > here[1] or (there[1] == here[1] and there[0] != here[0]
                                        and (here[0], there[0]) not in SIDEWAYS):
                wrong.append(f"{src} -> {dst}")
    assert not wrong, "imports against the layer order (see the module's doc):\n" + "\n".join(sorted(wrong))
