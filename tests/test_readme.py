"""CI must prove the README: .ci/run runs exactly the README's test command."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```")
    return [blocks[1].strip(), blocks[3].strip()]


def test_ci_runs_the_readme_test_command():
    _, test_cmd = _commands()
    assert "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_readme_main_job_installs_what_it_needs():
    main_cmd, test_cmd = _commands()
    for cmd in (main_cmd, test_cmd):
        assert cmd.startswith("pip install") and "torch==2.13.0" in cmd


FILE_EXT = {"py", "json", "jsonl", "csv", "pt", "npz", "log", "parquet", "toml", "md", "png", "svg", "ipynb", "html"}


def test_readme_names_only_what_exists():
    """Every backticked dotted name in the README (`checkpoints.run_status`, `players.PLAYERS`,
    `search.policy.to_player0`, ...) is an azscale module or an attribute of one, read relative to
    azscale, azscale.analysis, azscale.engines or azscale.search; file names and other libraries'
    names are left out."""
    import importlib
    import re
    text = (ROOT / "README.md").read_text()
    names = set(re.findall(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?`", text))

    def resolves(dotted: str) -> bool:
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for a in parts[i:]:
                    obj = getattr(obj, a)
            except AttributeError:
                return False
            return True
        return False

    bad = [n for n in sorted(names)
           if n.split(".")[-1] not in FILE_EXT and n.split(".")[0] not in ("torch", "np", "pyspiel", "ray", "tests")
           and not any(resolves(f"{p}.{n}" if p else n)
                       for p in ("azscale", "azscale.analysis", "azscale.engines", "azscale.search", ""))]
    assert not bad, f"the README names what does not exist: {bad}"
