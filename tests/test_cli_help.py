"""Every command's --help shows its whole text: typer renders help with rich markup, which
silently drops an unescaped `[word]` (a games/<game>.toml table name, say)."""
import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from azscale.cli import app

ROOT = get_command(app)


def _commands(cmd=ROOT, path=()):
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _commands(sub, path + (name,))


def _bracketed(text: str) -> list[str]:
    """The `[words]` a help text means to show (an escaped `\\[` is shown as `[`)."""
    return [m.replace("\\", "") for m in re.findall(r"\\?\[[a-z][^\[\]\\]*\]", text or "")]


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "azscale")
def test_help_keeps_every_bracketed_word(path):
    cmd = dict(_commands())[path]
    wanted = _bracketed(cmd.help) + [w for p in cmd.params for w in _bracketed(getattr(p, "help", None))]
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    shown = re.sub(r"[│╭╮╰╯─\s]+", " ", res.output)
    for w in wanted:
        assert w in shown, f"`azscale {' '.join(path)} --help` lost {w!r}"


def test_reference_players_in_help_come_from_the_registry(monkeypatch):
    """The help texts list the players' registry: a new reference player shows up in
    `evaluate --opponent` and `tournament --reference` with no other edit; and the command line
    loads without torch (the registry is light)."""
    import importlib
    import subprocess
    import sys

    import azscale.cli
    from azscale import players

    def make(spec, engine, seed):
        raise AssertionError("not made here")

    monkeypatch.setitem(players.PLAYERS, "greedy", players.Reference("one-ply greedy", make))
    monkeypatch.setitem(players.PLAYERS, "alphabeta", players.Reference("depth-N alpha-beta", make, searches=True))
    try:
        cli = importlib.reload(azscale.cli)
        env = {"COLUMNS": "400", "NO_COLOR": "1"}
        shown = re.sub(r"[│╭╮╰╯─\s]+", " ", CliRunner().invoke(cli.app, ["evaluate", "--help"], env=env).output)
        assert "greedy (one-ply greedy)" in shown and "random (uniform random)" in shown
        shown = re.sub(r"[│╭╮╰╯─\s]+", " ", CliRunner().invoke(cli.app, ["tournament", "--help"], env=env).output)
        assert "random, mcts-N, perfect, greedy, alphabeta-N" in shown
    finally:
        monkeypatch.undo()
        importlib.reload(azscale.cli)
    out = subprocess.run([sys.executable, "-c", "import sys, azscale.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_arena_makes_every_registered_player():
    """Each kind in the registry makes a player of that name (through `arena.make_player`)."""
    from azscale.arena import make_player, reference
    from azscale.engines import SpielEngine
    from azscale.players import PLAYERS
    engine = SpielEngine("tic_tac_toe")
    for kind, ref in PLAYERS.items():
        spec = reference(kind, 5)
        assert make_player(spec, engine, 0).name == spec.name == (f"{kind}-5" if ref.searches else kind)


def test_a_training_flag_of_an_unsupported_type_is_refused_naming_it(monkeypatch):
    """A setting given a flag must have a type a flag takes (`config.SETTING_TYPES`); otherwise
    defining the command fails with the setting's name, not a KeyError."""
    import dataclasses

    import azscale.cli as cli
    from azscale.config import setting

    @dataclasses.dataclass(frozen=True)
    class Settings:
        width: int = setting(16, "width")
        quick: bool = setting(False, "play fewer games")

    Settings.__dataclass_fields__["quick"].type = "bool"          # as written under `from __future__ import annotations`
    Settings.__dataclass_fields__["width"].type = "int"
    monkeypatch.setattr(cli, "TrainConfig", Settings)
    monkeypatch.setattr(cli, "TRAIN_FLAGS", {"width": "--width", "quick": "--quick"})
    with pytest.raises(TypeError, match=r"--quick: setting 'quick' has type 'bool'"):
        cli.training_options(after="preset")


def test_sizes_takes_its_help_from_the_settings():
    from azscale.config import TrainConfig, doc
    params = {p.name: p for p in dict(_commands())[("sizes",)].params}
    assert params["family"].help == doc("family") and params["family"].default == TrainConfig.family
    assert params["depth"].help.startswith(doc("depth")) and params["depth"].help.endswith(f"default {TrainConfig.depth}")


def test_sweep_options_come_from_the_sweep_settings():
    """`azscale sweep` has one option per sweep setting with a flag, named as the setting (the
    executor's kind is --executor, the training overrides --set; --match-sims is kept as an alias
    of --match-simulations), with the setting's doc and default as its help."""
    from azscale import sweepcfg as S
    params = {p.name: p for p in dict(_commands())[("sweep",)].params}
    for name in S.flags():
        p = params[name]
        assert p.help == S.help_text(name) and p.help.startswith(S.SETTINGS[name].metadata["doc"])
        assert p.opts[0] == S.flag(name) and p.default is None
    assert {n for n in S.flags() if S.flag(n) != "--" + n.replace("_", "-")} == {"kind", "overrides"}
    assert params["match_simulations"].opts == ["--match-simulations", "--match-sims"]
    assert params["solver"].secondary_opts == ["--no-solver"]
    # every key a sweep file takes (but the game, the argument, and out) is a flag
    assert (S.FILE_TOP | S.FILE_ANALYSIS | S.EXECUTOR_KEYS) - set(S.flags()) == {"game", "out", "analysis", "executor"}
    assert "\\[default: 100]" in S.help_text("games_per_pair") and S.help_text("tensorboard").endswith("hyperparameters")
