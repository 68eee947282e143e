"""The layers go one way: analysis never imports training (README, Architecture), checked on the
source (every import, followed) and at run time (what importing the analysis loads)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

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


# the engines' two lazy hooks into the search: imported inside the method the search calls to keep
# its nodes (`SpielEngine.nodes`, `TensorGame.nodes`), so only a search ever runs them
LAZY_SEARCH_HOOKS = {("engines/spiel.py", "search.nodes"), ("engines/twin.py", "search.nodes")}


def test_analysis_never_imports_training():
    """Every module under azscale/analysis/ and azscale/engines/ (the analysis replays games
    through the engines; the twins are imported by name from `engines.TWINS`, so all of them are
    walked), and every azscale module they import in turn, imports nothing from the trainer,
    self-play, the search, bench, the arena or the tournament; the engines' two lazy hooks into
    `search.nodes` excepted (`LAZY_SEARCH_HOOKS`)."""
    todo = [*(PKG / "analysis").glob("*.py"), *(PKG / "engines").glob("*.py")]
    seen: dict[Path, str] = {p: str(p.relative_to(PKG)) for p in todo}
    bad, hooks = [], set()
    while todo:
        f = todo.pop()
        for name in sorted(imported_modules(f)):
            top = name.split(".")[0]
            if (str(f.relative_to(PKG)), name) in LAZY_SEARCH_HOOKS:
                hooks.add((str(f.relative_to(PKG)), name))
            elif top in TRAINING:
                bad.append(f"{seen[f]} imports {name}")
            else:
                target = module_file(name)
                if target is not None and target not in seen:
                    seen[target] = f"{seen[f]} -> {name}"
                    todo.append(target)
    assert not bad, "\n".join(bad)
    assert hooks == LAZY_SEARCH_HOOKS, f"allowed hooks no longer there: {sorted(LAZY_SEARCH_HOOKS - hooks)}"
    assert PKG / "checkpoints.py" in seen          # the run reader is what the analysis loads models through


def test_an_engine_importing_training_is_caught(tmp_path, monkeypatch):
    """The walk covers engines/: a twin that imports self-play fails the test above."""
    import shutil
    fake = tmp_path / "azscale"
    shutil.copytree(PKG, fake, ignore=shutil.ignore_patterns("__pycache__"))
    with open(fake / "engines" / "pentago.py", "a") as f:
        f.write("\n\ndef _oops():\n    from ..selfplay import Actor  # noqa\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    with pytest.raises(AssertionError, match="engines/pentago.py imports selfplay"):
        test_analysis_never_imports_training()


TRAINING_MODULES = ["azscale." + m for m in sorted(TRAINING)]


def test_importing_every_analysis_module_loads_no_training():
    """At run time too: a fresh interpreter that imports every `azscale.analysis.*` module holds
    none of the trainer, self-play, the search, bench, the arena or the tournament."""
    names = sorted(f"azscale.analysis.{p.stem}" for p in (PKG / "analysis").glob("*.py"))
    code = (f"import importlib, sys\nfor n in {names!r}: importlib.import_module(n)\n"
            f"bad = sorted(m for m in sys.modules if any(m == t or m.startswith(t + '.') for t in {TRAINING_MODULES!r}))\n"
            "print(repr(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing the analysis loaded: {out.stdout.strip()}"
