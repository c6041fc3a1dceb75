"""The package's import graph: no cycles, and every import points down the layers below.

A module may import modules of its own layer or of a lower one, never of a higher one; the demo sits
above the library (the library never imports it) and the command line above everything. Imports
inside functions count too. ``python tests/test_layers.py`` prints the graph, layer by layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; a name stands for the module and everything inside it
LAYERS = [
    ["motive.files", "motive.parallel", "motive.log"],
    ["motive.data"],
    ["motive.models"],
    ["motive.motion"],
    ["motive.loss", "motive.projection", "motive.scoring", "motive.dimensions", "motive.flags"],
    ["motive.gradients", "motive.inputs", "motive.training", "motive.generate"],
    ["motive.store.format"],
    ["motive.store.journal"],
    ["motive.store.featurize", "motive.store"],
    [
        "motive.attribute",
        "motive.finetune",
        "motive.evaluate",
        "motive.queries",
        "motive.report",
        "motive.export",
        "motive.study",
        "motive.compare",
        "motive.lds",
    ],
    ["motive.demo"],
    ["motive.cli", "motive.__main__"],
]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted((SRC / "motive").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports anywhere in its code (``from motive.x import y`` counts as
    ``motive.x.y`` when that is a module, else ``motive.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("motive"):
            for a in node.names:
                name = f"{node.module}.{a.name}"
                found.add(name if name in known else node.module)
    return found & known


def layer(module: str) -> int:
    """The layer of ``module``: that of the longest entry of ``LAYERS`` that names it or a parent."""
    best, index = "", -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, index = name, i
    if index < 0:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS")
    return index


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, set(mods)) - {m} for m, p in mods.items() if m != "motive"}


def test_every_module_has_a_layer():
    for module in graph():
        layer(module)


def test_no_upward_imports():
    upward = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, deps in graph().items()
        for b in sorted(deps)
        if b != "motive" and layer(b) > layer(a)
    ]
    assert not upward, "\n".join(upward)


def test_no_cycles():
    g = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [])


def test_library_never_imports_the_demo():
    offenders = [
        a
        for a, deps in graph().items()
        if not a.startswith(("motive.demo", "motive.cli")) and any(d.startswith("motive.demo") for d in deps)
    ]
    assert not offenders, offenders


if __name__ == "__main__":
    g = graph()
    for i, names in enumerate(LAYERS):
        print(f"layer {i}: {', '.join(names)}")
        for m in sorted(x for x in g if layer(x) == i):
            print(f"  {m} -> {', '.join(sorted(g[m])) or '(nothing in motive)'}")
