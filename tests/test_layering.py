"""The package import graph: a declared layer order and no cycles.

Every import inside ``simplepose/`` counts, including the deferred ones inside functions (a
deferred import hides a cycle from Python, not from the design); imports under
``if TYPE_CHECKING:`` do not. A new top-level module or package must be added to
:data:`LAYERS`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "simplepose"
#: Compiled extension modules (no .py file): leaves of the graph.
NATIVE = ("simplepose._grouping",)

#: Top-level modules and packages of simplepose, lowest layer first. A unit may import units of
#: lower layers only: never one of its own layer, never a higher one. ``__init__`` is the
#: package facade (it re-exports the public API lazily).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_grouping"),
    ("utils", "skeleton"),
    ("geometry", "structures", "dist"),
    ("decode", "models", "losses"),
    ("codecs",),
    ("data",),
    ("spec",),
    ("checkpoint", "config", "convert", "detect", "visualize", "tracking"),
    ("inference",),
    ("oracle",),
    ("evaluation", "export"),
    ("predictor",),
    ("engine", "demo"),
    ("cli",),
    ("__main__",),
    ("__init__",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, frozenset[str]]:
    """``{module: {simplepose modules it imports}}`` over every ``.py`` file of the package."""
    files: dict[str, Path | None] = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    files.update(dict.fromkeys(NATIVE))
    graph: dict[str, frozenset[str]] = {}
    for name, path in files.items():
        if path is None:
            graph[name] = frozenset()
            continue
        is_pkg = path.name == "__init__.py"
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip = _type_checking_nodes(tree)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                bases = [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                bases = [(mod, [a.name for a in node.names])]
            else:
                continue
            for mod, names in bases:
                if mod != "simplepose" and not mod.startswith("simplepose."):
                    continue
                subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in files]
                targets.update(subs or [mod])  # `from pkg import module` -> the module
        graph[name] = frozenset(t for t in targets if t in files and t != name)
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_unit_is_declared():
    declared = {u for layer in LAYERS for u in layer}
    units = {_unit(m) for m in import_graph()}
    assert units <= declared, f"add {sorted(units - declared)} to LAYERS in {__file__}"


def test_imports_follow_the_layer_order():
    rank = {u: i for i, layer in enumerate(LAYERS) for u in layer}
    bad = sorted(
        f"{src} (layer {rank[_unit(src)]}) imports {dst} (layer {rank[_unit(dst)]})"
        for src, dsts in import_graph().items()
        for dst in dsts
        if _unit(src) != _unit(dst) and rank.get(_unit(dst), 0) >= rank.get(_unit(src), 0)
    )
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_module_import_graph_has_no_cycles():
    # a package's __init__ may re-export its own submodules; only cycles through other
    # modules count (Python runs __init__ first anyway)
    graph = {
        m: {d for d in deps if not (m.count(".") < d.count(".") and d.startswith(m + "."))}
        for m, deps in import_graph().items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_package_import_graph_has_no_cycles():
    units: dict[str, set[str]] = {}
    for src, dsts in import_graph().items():
        units.setdefault(_unit(src), set()).update(_unit(d) for d in dsts if _unit(d) != _unit(src))
    cycle = find_cycle(units)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
