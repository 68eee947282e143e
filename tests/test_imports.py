"""No import cycles in the package: every module's imports, those inside functions included,
read from its source (AST), relative imports resolved, form a graph without a cycle. A cycle
hidden behind an import inside a function still ties two modules together (neither can be
understood, tested or moved without the other); shared pieces belong in a lower module."""
import ast
from pathlib import Path

import azscale

PKG = Path(azscale.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module `name` imports anywhere in its source: `import a.b`,
    `from a import b` (b a module, else a) and relative forms, resolved against `name`."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:          # `import azscale.x.y` of a name inside a module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    """Every module's imports, and the modules a registry names to import later: the functions of
    the sweep's steps (`sweepsteps.STEPS`) and the tensor twins (`engines.TWINS`)."""
    mods = _modules()
    known = set(mods)
    g = {m: _imports(m, p, known) for m, p in mods.items()}
    from azscale.engines import TWINS
    from azscale.sweepsteps import STEPS
    g["azscale.sweepsteps"] |= {"azscale." + s.function.split(":")[0] for s in STEPS.values()}
    g["azscale.engines"] |= {"azscale.engines." + w.split(":")[0] for w in TWINS.values()}
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    g = graph()
    assert "azscale.sweepcfg" in g["azscale.cli"]                   # `from . import sweepcfg as S` in a function
    assert "azscale.config" in g["azscale.engines"]                 # `from ..config import base_name` in a function
    assert "azscale.analysis.zipf" in g["azscale.analysis.zipf_report"]
    assert "azscale.sweepwork" in g["azscale.sweepsteps"]                 # named by the registry
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
