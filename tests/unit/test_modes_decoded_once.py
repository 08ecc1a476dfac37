"""Each mode is decoded in its own module only: nothing else compares with a mode's name or the
flow-based port's remote_ip ("flow"). The mode objects (controller/pipeline/tunnel_ports.py,
controller/pipeline/learning_modes.py) own every difference between the modes; read with ast.

A trace step's kind is also called "flow" or "controller" (controller/pipeline/trace.py): a
comparison with `.kind` or `["kind"]` is about that, not a mode.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from controller.pipeline import learning_modes, tunnel_ports

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("controller", "apps", "lab", "bench")  # mininet_topos/ runs on the system Python: its own words
OWNERS = {REPO / "controller/pipeline/tunnel_ports.py", REPO / "controller/pipeline/learning_modes.py"}
NAMES = frozenset(tunnel_ports.MODES) | frozenset(learning_modes.MODES) | {tunnel_ports.FLOW}
CONSTANTS = frozenset({"FLOW", "MODE_CONTROLLER", "MODE_LEARN", "MESH", "FLOW_BASED", "BY_CONTROLLER", "BY_SWITCH"})


def _is_kind(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "kind"
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "kind"


def _mentions_mode(node: ast.AST) -> bool:
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    for item in items:
        if isinstance(item, ast.Constant) and item.value in NAMES:
            return True
        if isinstance(item, ast.Name) and item.id in CONSTANTS:
            return True
        if isinstance(item, ast.Attribute) and item.attr in CONSTANTS:
            return True
    return False


def mode_comparisons(source: str, name: str = "<test>") -> Iterator[int]:
    """Line numbers of comparisons with a mode's name or constant."""
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(_is_kind(o) for o in operands):
            continue
        if any(_mentions_mode(o) for o in operands):
            yield node.lineno


def test_the_check_sees_names_constants_and_memberships():
    src = ('a = p.remote_ip == "flow"\nb = mode != MODE_LEARN\nc = x in (ip, "flow")\nd = m is tunnel_ports.MESH\n'
           'e = step.kind == "flow"\nf = s["kind"] == "controller"\ng = n == "miss"\n')
    assert list(mode_comparisons(src)) == [1, 2, 3, 4]


def test_no_mode_is_decoded_outside_its_module():
    found = [f"{p.relative_to(REPO)}:{line}" for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))
             if p not in OWNERS for line in mode_comparisons(p.read_text(), str(p))]
    assert not found, "a mode decoded outside its module (ask the mode object instead):\n" + "\n".join(found)
