import numpy as np
import pytest

from azscale.engines import SpielEngine
from azscale.search import BatchedMCTS, select_actions, to_player0

# (game, actions leading to the position, winning move, blocking move)
WIN_IN_ONE = [
    ("tic_tac_toe", [0, 3, 1, 4], 2),                     # x: 0,1 -> plays 2
    ("connect_four", [0, 1, 0, 1, 0, 1], 0),              # x stacks column 0 three high
]
BLOCK = [
    ("tic_tac_toe", [0, 4, 8, 2], 6),                     # o threatens 2-4-6; x must take 6
    ("connect_four", [0, 1, 6, 1, 6, 1], 1),              # o has three in column 1; x must block
]


@pytest.mark.parametrize("game,moves,win", WIN_IN_ONE)
def test_takes_win_in_one(game, moves, win, uniform):
    eng = SpielEngine(game)
    mcts = BatchedMCTS(eng, uniform, simulations=200)
    state = eng.replay(moves)
    res = mcts.run([state, state.clone()], rng=None, noise=False)
    assert (res.visits.argmax(1) == win).all()
    assert (res.root_value > 0.5).all()      # side to move is winning: positive in its own frame


@pytest.mark.parametrize("game,moves,block", BLOCK)
def test_blocks_loss_in_one(game, moves, block, uniform):
    eng = SpielEngine(game)
    mcts = BatchedMCTS(eng, uniform, simulations=400)
    res = mcts.run([eng.replay(moves)], rng=None, noise=False)
    assert res.visits[0].argmax() == block


def test_value_frame_on_a_won_position(uniform):
    """Player 1 (o) to move with a win available: the root value must be +1 in o's frame,
    i.e. -1 in player 0's frame."""
    eng = SpielEngine("tic_tac_toe")
    state = eng.replay([0, 3, 1, 4, 8])      # o has 3,4 -> 5 wins; x threatens 2
    assert state.current_player() == 1
    res = BatchedMCTS(eng, uniform, simulations=300).run([state], rng=None, noise=False)
    assert res.visits[0].argmax() == 5
    assert res.root_value[0] > 0.5
    assert to_player0(res.root_value, np.array([1]))[0] < -0.5


def test_search_is_batched_one_network_call_per_wave(uniform):
    calls = []

    def counting(obs, legal):
        calls.append(len(obs))
        return uniform(obs, legal)

    eng = SpielEngine("connect_four")
    mcts = BatchedMCTS(eng, counting, simulations=20)
    mcts.run(eng.new_states(32), rng=np.random.default_rng(0), noise=True)
    assert len(calls) == 1 + 20                   # the roots, then one call per simulation wave
    assert calls[0] == 32 and max(calls[1:]) == 32
    assert mcts.stats.simulations == 32 * 20


def test_root_visits_sum_to_simulations(uniform):
    eng = SpielEngine("tic_tac_toe")
    res = BatchedMCTS(eng, uniform, simulations=50).run(eng.new_states(3), np.random.default_rng(1))
    assert res.visits.sum(1).tolist() == [50, 50, 50]


def test_select_actions_temperature():
    rng = np.random.default_rng(0)
    visits = np.array([[0, 10, 30, 0]] * 4000)
    greedy = select_actions(visits, 0.0, rng)
    assert (greedy == 2).all()
    sampled = select_actions(visits, 1.0, rng)
    assert set(sampled.tolist()) == {1, 2}
    assert abs((sampled == 2).mean() - 0.75) < 0.03
