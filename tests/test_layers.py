"""The layers go one way: analysis never imports training (README, Architecture)."""

import ast
from pathlib import Path

import azscale

PKG = Path(azscale.__file__).parent
# what analysis must never reach: the trainer, self-play, the search and the players
TRAINING = {"train", "selfplay", "search", "bench", "arena", "tournament"}


def imported_modules(path: Path) -> set[str]:
    """The azscale modules a file imports, as dotted names below `azscale` (e.g. `checkpoints`,
    `analysis.states`): `import` and `from` forms, relative or absolute, at any depth (inside
    functions too)."""
    rel = path.relative_to(PKG).with_suffix("").parts
    package = list(rel[:-1])                    # the package the file lies in
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = base + (node.module.split(".") if node.module else [])
                names = [".".join(["azscale", *mod])]
                if not node.module:            # `from . import runs`: the names are modules
                    names = [".".join(["azscale", *base, a.name]) for a in node.names]
            else:
                names = [node.module or ""]
                names += [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n[len("azscale."):] for n in names if n.startswith("azscale.")}
    return out


def module_file(name: str) -> Path | None:
    p = PKG.joinpath(*name.split("."))
    return p / "__init__.py" if p.is_dir() else (p.with_suffix(".py") if p.with_suffix(".py").is_file() else None)


def test_the_import_finder_sees_every_form():
    # a module-level relative import, one inside a function, and `from . import x`
    assert {"selfplay", "checkpoints", "runs"} <= imported_modules(PKG / "train.py")
    assert "checkpoints" in imported_modules(PKG / "arena.py")              # inside evaluate_checkpoint
    assert "engines.spiel" in imported_modules(PKG / "analysis" / "states.py")   # `from ..engines.spiel import`


def test_analysis_never_imports_training():
    """Every module under azscale/analysis/, and every azscale module they import in turn
    (the engines excepted: replaying states needs OpenSpiel's rules, nothing more), imports
    nothing from the trainer, self-play, the search, bench, the arena or the tournament."""
    todo = [p for p in (PKG / "analysis").glob("*.py")]
    seen: dict[Path, str] = {p: f"analysis/{p.name}" for p in todo}
    bad = []
    while todo:
        f = todo.pop()
        for name in sorted(imported_modules(f)):
            top = name.split(".")[0]
            if top in TRAINING:
                bad.append(f"{seen[f]} imports {name}")
            elif top != "engines":
                target = module_file(name)
                if target is not None and target not in seen:
                    seen[target] = f"{seen[f]} -> {name}"
                    todo.append(target)
    assert not bad, "\n".join(bad)
    assert PKG / "checkpoints.py" in seen          # the run reader is what the analysis loads models through
