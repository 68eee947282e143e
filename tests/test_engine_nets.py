import numpy as np
import pytest

from azscale.engines import SpielEngine
from azscale.errors import UserError
from azscale.nets import sizes

PAPER_COUNTS = {
    "connect_four": [608, 1304, 2984, 7496, 21128, 66824, 231944],
    "pentago": (1941, 299553),
    "oware": (155, 203015),
    "checkers": (3909, 411393),
}


@pytest.mark.parametrize("game", list(PAPER_COUNTS))
def test_parameter_counts_equal_the_papers(game):
    counts = [s.params for s in sizes(game)]
    want = PAPER_COUNTS[game]
    if len(want) == 7:
        assert counts == want
    else:
        assert (counts[0], counts[-1]) == want
    # and the paper's closed form, for every width
    eng = SpielEngine(game)
    for s in sizes(game, extra=True):
        w = s.width
        assert s.params == 3 * w * w + (eng.obs_size + eng.num_actions + 5) * w + eng.num_actions + 1


@pytest.mark.parametrize("game,why", [
    ("backgammon", "chance nodes"), ("kuhn_poker", "imperfect information"),
    ("goofspiel", "simultaneous moves"), ("chinese_checkers(players=3)", "3 players"),
    ("matrix_pd", "general-sum"), ("no_such_game", "unknown OpenSpiel game"),
])
def test_games_outside_the_class_are_refused(game, why):
    with pytest.raises(UserError, match=why):
        SpielEngine(game)


def test_game_parameters_are_accepted():
    eng = SpielEngine("connect_four(rows=4,columns=5)")
    assert eng.num_actions == 5 and eng.obs_shape == (3, 4, 5)


def test_expand_is_functional_and_info_is_right():
    eng = SpielEngine("tic_tac_toe")
    roots = eng.new_states(2)
    kids, info = eng.expand(roots, np.array([4, 0]))
    assert all(len(r.history()) == 0 for r in roots)
    assert info.player.tolist() == [1, 1] and not info.terminal.any()
    assert info.legal.sum(1).tolist() == [8, 8] and not info.legal[0, 4] and not info.legal[1, 0]
    won = eng.replay([0, 3, 1, 4, 2])          # x takes the top row
    term = eng.info([won])
    assert term.terminal[0] and term.returns[0].tolist() == [1.0, -1.0] and term.player[0] == -1


def test_flushing_subnormals_zeroes_them_in_the_thread_and_the_cli_turns_it_on(tmp_path):
    """The paper's learner drives unused weights geometrically to subnormal floats, which x86
    computes ~100x slower. `nets.flush_subnormals` makes this thread compute with them as zeros:
    a network with many subnormal weights gives (policy) outputs that differ from the same network
    with them zeroed without it, and equal ones with it. The CLI's `main` turns it on before any
    command runs (here a command that fails on its first check)."""
    import torch
    from azscale.cli import main
    from azscale.nets import build, flush_subnormals
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    torch.set_flush_denormal(False)
    sub = torch.tensor([1e-39], dtype=torch.float32)
    assert float(sub * 2) != 0.0                       # ordinary (gradual underflow) arithmetic
    torch.manual_seed(0)
    model = build("mlp", (3, 6, 7), 7, 16, 2)
    assert float(sub * 2) != 0.0                       # building a network changes nothing
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(torch.where(torch.rand(p.shape) < 0.7, 1e-39, 1.0))
        tiny = torch.finfo(torch.float32).tiny
        assert sum(int(((p != 0) & (p.abs() < tiny)).sum()) for p in model.parameters()) > 1000
        zeroed = build("mlp", (3, 6, 7), 7, 16, 2)
        zeroed.load_state_dict({k: torch.where(v.abs() < tiny, 0.0, v) for k, v in model.state_dict().items()})
        x = (torch.rand(64, 126) < 0.3).float()
        assert not torch.equal(model(x)[0], zeroed(x)[0])
        assert flush_subnormals()
        assert float(sub * 2) == 0.0
        for a, b in zip(model(x), zeroed(x)):
            assert torch.equal(a, b)
    torch.set_flush_denormal(False)
    with pytest.raises(SystemExit):
        main(["train", "no_such_game", "--run-dir", str(tmp_path / "r")])
    assert float(sub * 2) == 0.0
