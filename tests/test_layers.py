"""The package is a one-way house: no import cycle, and no module imports from a layer above its own.

Layers, lowest first (docs/DESIGN.md, "Layers"): units and errors; specs; core; data access (YAML reading,
registry of presets and profiles, Hugging Face configs, points CSV); calibration and the layout search; budget;
plan files, exports and rendering; the API (plans as users load them); the CLI. A module may import from its own
layer or any below. Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "planner"

#: (module prefix, layer). The longest matching prefix wins.
LAYERS = {
    "planner.units": 0, "planner.errors": 0, "planner.console": 0,
    "planner.specs": 1,
    "planner.core": 2,
    "planner.io": 3, "planner.io.yamlsrc": 3, "planner.io.hf_config": 3, "planner.io.points_csv": 3, "planner.registry": 3,
    "planner.pricing": 3,
    "planner.calibrate": 4, "planner.search": 4,
    "planner.budget": 5,
    "planner.io.plan": 6, "planner.io.export": 6, "planner.report": 6, "planner.plots": 6,
    "planner.plans": 7, "planner.api": 7,
    "planner.cli": 8,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(mod: str):
    best = None
    for prefix, layer in LAYERS.items():
        if (mod == prefix or mod.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return None if best is None else best[1]


def imports_of(path: Path, mod: str, modules: set[str]) -> set[str]:
    """planner modules ``path`` imports (resolved to the module, not the package, where it names one)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
        else:
            continue
        out.update(n for n in names if n.startswith("planner") and n != "planner")
    return out


def graph() -> dict[str, set[str]]:
    files = [p for p in PKG.rglob("*.py")]
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, module_name(p), modules) - {module_name(p)} for p in files}


def test_every_module_has_a_layer():
    missing = sorted(m for m in graph() if m != "planner" and layer_of(m) is None)
    assert not missing, f"modules without a layer in LAYERS: {missing}"


def test_no_import_from_a_higher_layer():
    bad = []
    for mod, deps in graph().items():
        if mod == "planner":  # the package's lazy public names (PEP 562) point at the API on purpose
            continue
        for dep in deps:
            if layer_of(dep) is not None and layer_of(dep) > layer_of(mod):
                bad.append(f"{mod} (layer {layer_of(mod)}) imports {dep} (layer {layer_of(dep)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle():
    full = graph()
    g = {m: {d for d in deps if d in full} for m, deps in full.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_walker_sees_lazy_and_relative_imports():
    g = graph()
    assert "planner.core.flops" in g["planner.core.time"]  # a relative import at the top of a core module
    assert "planner.specs.plan" in g["planner.core.estimate"]
