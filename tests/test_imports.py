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
    """The modules of every strongly connected component of more than one module (scipy's)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    names = sorted(set(g) | {w for ws in g.values() for w in ws})
    at = {n: i for i, n in enumerate(names)}
    edges = [(at[v], at[w]) for v, ws in g.items() for w in ws]
    rows, cols = (np.array(x, dtype=np.int64) for x in zip(*edges)) if edges else (np.zeros(0, np.int64),) * 2
    adj = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, label = connected_components(adj, directed=True, connection="strong")
    comps: dict[int, list[str]] = {}
    for n, lab in zip(names, label):
        comps.setdefault(int(lab), []).append(n)
    return sorted(sorted(c) for c in comps.values() if len(c) > 1)


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
