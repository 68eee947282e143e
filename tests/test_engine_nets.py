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


@pytest.mark.parametrize("game,kind", [("tic_tac_toe", "spiel"), ("oware(num_houses_per_player=3,num_seeds_per_house=2)",
                                                                    "spiel")]
                         + [(g, "tensor") for g in ("tic_tac_toe", "connect_four", "pentago", "oware", "checkers")])
def test_every_engine_meets_the_whole_contract(game, kind):
    """engines/base.Engine lists what the search, actors and learner use; every engine declares
    each attribute with its type and each method, so no caller needs a getattr default."""
    import inspect

    import torch

    from azscale.engines import make_engine
    from azscale.engines.base import ENGINE_ATTRIBUTES, ENGINE_METHODS, Engine
    eng = make_engine(game, kind)
    declared = set(Engine.__annotations__)
    assert declared == set(ENGINE_ATTRIBUTES)
    methods = {n for n, v in vars(Engine).items()
               if not n.startswith("_") and (inspect.isfunction(v) or isinstance(v, staticmethod))}
    assert methods == set(ENGINE_METHODS)
    for a in ENGINE_ATTRIBUTES:
        assert hasattr(eng, a), a
    assert isinstance(eng.name, str) and isinstance(eng.game, str) and isinstance(eng.num_actions, int)
    assert isinstance(eng.obs_shape, tuple) and eng.obs_size == int(np.prod(eng.obs_shape))
    assert isinstance(eng.device, torch.device) and isinstance(eng.obs_dtype, torch.dtype)
    assert isinstance(eng.action_group, int) and eng.action_group >= 1 and eng.num_actions % eng.action_group == 0
    assert isinstance(eng.compile_simd, bool) and isinstance(eng.lookback_fields, tuple)
    for m in ENGINE_METHODS:
        assert callable(getattr(eng, m, None)), m
    # and the batch path works with them: a batch advanced one move
    s = eng.new_states(3)
    obs, legal, player, term, ret = eng.batch_info(s)
    assert tuple(obs.shape) == (3, eng.obs_size) and tuple(legal.shape) == (3, eng.num_actions)
    acts = torch.as_tensor(np.asarray(legal).argmax(1) if isinstance(legal, np.ndarray) else legal.long().argmax(1))
    assert eng.size(eng.advance(s, acts.to(eng.device))) == 3
