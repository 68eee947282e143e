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
    return [m.replace("\\", "") for m in re.findall(r"\\?\[[a-z][a-z_ ]*\]", text or "")]


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "azscale")
def test_help_keeps_every_bracketed_word(path):
    cmd = dict(_commands())[path]
    wanted = _bracketed(cmd.help) + [w for p in cmd.params for w in _bracketed(getattr(p, "help", None))]
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    shown = re.sub(r"[│╭╮╰╯─\s]+", " ", res.output)
    for w in wanted:
        assert w in shown, f"`azscale {' '.join(path)} --help` lost {w!r}"
