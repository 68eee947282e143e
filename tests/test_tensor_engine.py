"""Differential tests: the tensor twins against OpenSpiel, step by step."""
import numpy as np
import pytest
import torch

from azscale.engines import make_engine
from azscale.engines.spiel import SpielEngine
from azscale.engines.tensor import make_tensor_engine
from azscale.errors import UserError
from azscale.nets import build
from azscale.search import BatchedMCTS, select_actions
from azscale.search_tensor import TensorMCTS
from azscale.selfplay import make_evaluator

GAMES = ["tic_tac_toe", "connect_four", "connect_four(rows=4,columns=5,x_in_row=3)", "pentago"]


def compare_random_games(game, n, seed):
    te, se = make_tensor_engine(game), SpielEngine(game)
    rng = np.random.default_rng(seed)
    ts, ss = te.new_states(n), se.new_states(n)
    steps = 0
    while True:
        ti, si = te.info(ts), se.info(ss)
        for f in ("obs", "legal", "player", "terminal", "returns"):
            assert np.array_equal(getattr(ti, f), getattr(si, f)), (game, f, steps)
        if si.terminal.all():
            return steps
        live = np.flatnonzero(~si.terminal)
        acts = np.array([rng.choice(np.flatnonzero(si.legal[i])) for i in live])
        se.apply([ss[i] for i in live], acts)
        idx = torch.as_tensor(live)
        te.put(ts, idx, te.step(te.take(ts, idx), torch.as_tensor(acts)))
        steps += 1


@pytest.mark.parametrize("game", GAMES)
def test_random_games_match_openspiel(game):
    assert compare_random_games(game, 500, 1) > 0


@pytest.mark.slow
@pytest.mark.parametrize("game", GAMES)
def test_ten_thousand_random_games_match_openspiel(game):
    compare_random_games(game, 10_000, 2)


@pytest.mark.parametrize("game", ["tic_tac_toe", "connect_four", "pentago"])
def test_search_driven_games_match_openspiel(game):
    """Games chosen by the tensor search (greedy after noise) replay identically in OpenSpiel."""
    torch.manual_seed(0)
    te, se = make_tensor_engine(game), SpielEngine(game)
    model = build("mlp", te.obs_shape, te.num_actions, 16, 2).eval()
    mcts = TensorMCTS(te, model, 16)
    rng = np.random.default_rng(0)
    n = 32
    ts, ss = te.new_states(n), se.new_states(n)
    while not te.terminal(ts).all():
        live = np.flatnonzero(~te.terminal(ts).numpy())
        idx = torch.as_tensor(live)
        res = mcts.run(te.take(ts, idx), rng)
        acts = select_actions(res.visits, 1.0, rng)
        se.apply([ss[i] for i in live], acts)
        te.put(ts, idx, te.step(te.take(ts, idx), torch.as_tensor(acts)))
        ti, si = te.info(ts), se.info(ss)
        for f in ("obs", "legal", "player", "terminal", "returns"):
            assert np.array_equal(getattr(ti, f), getattr(si, f)), f


@pytest.mark.parametrize("game,hist", [
    ("connect_four", [[], [3], [3, 3, 2], [0, 1, 2, 3, 4, 5, 6, 0], [0, 1, 0, 1, 0, 1]]),
    ("tic_tac_toe", [[], [4], [0, 3, 1, 4], [0, 4, 8, 2]]),
    ("pentago", [[], [9], [9, 100, 17], [0, 8, 16, 24, 32, 287]]),
])
def test_tensor_search_equals_reference_search(game, hist):
    """Same positions, same network, no noise: identical root visits and values."""
    torch.manual_seed(1)
    te, se = make_tensor_engine(game), SpielEngine(game)
    model = build("mlp", te.obs_shape, te.num_actions, 32, 2).eval()
    roots = te.replay_many(hist)
    a = TensorMCTS(te, model, 150).run(roots, None, noise=False)
    b = BatchedMCTS(se, make_evaluator(model), 150).run(se.replay_many(hist), None, noise=False)
    assert np.array_equal(a.visits, b.visits)
    assert np.allclose(a.root_value, b.root_value, atol=1e-5)


def test_engine_selection():
    assert make_engine("connect_four", "auto").name == "tensor"
    assert make_engine("connect_four", "spiel").name == "spiel"
    assert make_engine("pentago", "auto").name == "tensor"
    assert make_engine("oware", "auto").name == "spiel"
    with pytest.raises(UserError, match="no tensor twin for 'oware'"):
        make_engine("oware", "tensor")
    with pytest.raises(UserError, match="unknown engine"):
        make_engine("connect_four", "gpu")


def test_training_with_either_engine_gives_the_same_games(tmp_path):
    from azscale.config import resolve
    from azscale.runs import read_games
    from azscale.train import train
    for kind in ("spiel", "tensor"):
        train(resolve("tic_tac_toe", "smoke", {"engine": kind, "snapshot_seconds": 1e9}), tmp_path / kind, quiet=True)
    drop = ["run", "seat0", "seat1"]
    a = read_games(tmp_path / "spiel").drop_columns(drop)
    b = read_games(tmp_path / "tensor").drop_columns(drop)
    assert a.num_rows > 0 and a.equals(b)
