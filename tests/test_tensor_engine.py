"""Differential tests: the tensor twins against OpenSpiel, step by step."""
import numpy as np
import pytest
import torch

from azscale.engines import make_engine
from azscale.engines.spiel import SpielEngine
from azscale.engines import make_tensor_engine
from azscale.errors import UserError
from azscale.nets import build
from azscale.search import MCTS, select_actions

GAMES = ["tic_tac_toe", "connect_four", "connect_four(rows=4,columns=5,x_in_row=3)",
         "connect_four(rows=9,columns=8)", "pentago", "oware", "checkers",
         "checkers(rows=7,columns=7)", "checkers(rows=10,columns=10)"]


def compare_random_games(game, n, seed):
    """Random games through both engines, every step compared."""
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


@pytest.mark.parametrize("game", ["tic_tac_toe", "connect_four", "pentago", "oware", "checkers"])
def test_search_driven_games_match_openspiel(game):
    """Games chosen by the tensor search (sampled from its visits, root noise on) replay
    identically in OpenSpiel."""
    torch.manual_seed(0)
    te, se = make_tensor_engine(game), SpielEngine(game)
    model = build("mlp", te.obs_shape, te.num_actions, 16, 2).eval()
    mcts = MCTS(te, model, 16)
    gen = torch.Generator().manual_seed(0)
    n = 32
    ts, ss = te.new_states(n), se.new_states(n)
    while not te.terminal(ts).all():
        live = np.flatnonzero(~te.terminal(ts).numpy())
        idx = torch.as_tensor(live)
        res = mcts.run(te.take(ts, idx), noise=True, generator=gen)
        acts = select_actions(res.visits, 1.0, gen)
        se.apply([ss[i] for i in live], acts.numpy())
        te.put(ts, idx, te.step(te.take(ts, idx), acts))
        ti, si = te.info(ts), se.info(ss)
        for f in ("obs", "legal", "player", "terminal", "returns"):
            assert np.array_equal(getattr(ti, f), getattr(si, f)), f


@pytest.mark.parametrize("game,hist", [
    ("connect_four", [[], [3], [3, 3, 2], [0, 1, 2, 3, 4, 5, 6, 0], [0, 1, 0, 1, 0, 1]]),
    ("tic_tac_toe", [[], [4], [0, 3, 1, 4], [0, 4, 8, 2]]),
    ("pentago", [[], [9], [9, 100, 17], [0, 8, 16, 24, 32, 287]]),
    ("oware", "random"),
    ("checkers", "random"),
    # no root with every action legal: the search packs legal actions into fewer slots
    ("connect_four", [[0, 1, 0, 1, 0, 1], [6, 6, 6, 6, 6, 6, 0]]),
    ("pentago", [[9], [9, 100, 17], [0, 8, 16, 24, 32, 287]]),
])
def test_twin_search_equals_pyspiel_search(game, hist):
    """The same search over both node stores (tensor twin in the graph, pyspiel states through
    the host hook): identical root visits and values on the same positions."""
    torch.manual_seed(1)
    te, se = make_tensor_engine(game), SpielEngine(game)
    if hist == "random":          # positions 0 to 120 actions into random games (oware: long lines)
        hist = [random_history(game, k, seed=k) for k in (0, 5, 15, 30, 60, 90, 120)]
    model = build("mlp", te.obs_shape, te.num_actions, 32, 2).eval()
    a = MCTS(te, model, 150).run(te.replay_many(hist))
    b = MCTS(se, model, 150).run(se.replay_many(hist))
    assert np.array_equal(a.visits.numpy(), b.visits.numpy())
    assert np.allclose(a.root_value.numpy(), b.root_value.numpy(), atol=1e-6)


def test_engine_selection():
    assert make_engine("connect_four", "auto").name == "tensor"
    assert make_engine("connect_four", "spiel").name == "spiel"
    assert make_engine("pentago", "auto").name == "tensor"
    assert make_engine("oware", "auto").name == "tensor"
    assert make_engine("checkers", "auto").name == "tensor"
    assert make_engine("tic_tac_toe", "auto").name == "tensor"
    with pytest.raises(UserError, match="no tensor twin for 'breakthrough'"):
        make_engine("breakthrough", "tensor")
    with pytest.raises(UserError, match="egocentric"):
        make_engine("checkers(egocentric=true)", "tensor")
    with pytest.raises(UserError, match="rows != columns"):
        make_engine("checkers(rows=8,columns=10)", "tensor")
    # a 6x6 board is full at the start: over before any move, so the game is refused (issue 18)
    with pytest.raises(UserError, match="not playable"):
        make_engine("checkers(rows=6,columns=6)", "tensor")
    with pytest.raises(UserError, match="packs a board into 64 bits"):
        make_engine("oware(num_houses_per_player=8)", "tensor")
    with pytest.raises(UserError, match="unknown engine"):
        make_engine("connect_four", "gpu")


@pytest.mark.parametrize("game,extra", [("tic_tac_toe", {}),
                                        ("oware", {"steps": 2, "games_in_flight": 8, "simulations": 8}),
                                        ("checkers", {"steps": 2, "games_in_flight": 8, "simulations": 8})])
def test_training_with_either_engine_gives_the_same_games(tmp_path, game, extra):
    from azscale.config import resolve
    from azscale.runs import read_games
    from azscale.train import train
    for kind in ("spiel", "tensor"):
        train(resolve(game, "smoke", {"engine": kind, "snapshot_seconds": 1e9, **extra}), tmp_path / kind, quiet=True)
    drop = ["run", "seat0", "seat1"]
    a = read_games(tmp_path / "spiel").drop_columns(drop)
    b = read_games(tmp_path / "tensor").drop_columns(drop)
    assert a.num_rows > 0 and a.equals(b)


def test_oware_tree_step_finds_repetitions_along_the_path_and_before_the_root():
    """`tree_step` (one board code per node, the path's ancestors, the root's sorted list) gives
    the same states as OpenSpiel along random lines from late roots; both places a repeated board
    can lie are reached (seed 5: 14 repetitions of a board inside the tree, 6 of a board before
    the root)."""
    import pyspiel
    te = make_tensor_engine("oware")
    g = pyspiel.load_game("oware")
    rng = np.random.default_rng(5)
    found = {"tree": 0, "root": 0}
    for game in range(300):
        hist = random_history("oware", int(rng.integers(20, 200)), seed=1000 + game)
        root_s = g.new_initial_state()
        for a in hist:
            root_s.apply_action(a)
        if root_s.is_terminal():
            continue
        root = te.replay(hist)
        ctx = te.tree_context(root)
        line = [te.node_state(root)]                 # node states from the root down
        s = root_s.clone()
        for depth in range(1, 80):
            act = int(rng.choice(s.legal_actions()))
            par = line[-1]
            anc = {"code": torch.stack([n["code"] for n in line])}        # [depth, 1]
            anc_depth = torch.arange(depth)[:, None]
            kid = te.tree_step(par, torch.tensor([act]), anc, anc_depth, torch.ones(depth, 1, dtype=torch.bool),
                               torch.tensor([depth - 1]), ctx)
            s.apply_action(act)
            t, pl, lg, ret = te.status(kid)
            assert bool(t[0]) == s.is_terminal(), (game, depth)
            assert np.array_equal(te.observation(kid)[0].numpy(), np.asarray(s.observation_tensor(0), np.float32))
            if s.is_terminal():
                assert np.array_equal(ret[0].numpy(), np.asarray(s.returns(), np.float32))
                codes = [int(n["code"][0]) for n in line[1:]]
                if int(kid["code"][0]) in codes[len(codes) - int(par["since"][0]):] if codes else False:
                    found["tree"] += 1
                elif int(kid["code"][0]) in set(root["hist"][0, : int(root["since"][0])].tolist()):
                    found["root"] += 1
                break
            assert pl[0] == s.current_player() and np.array_equal(lg[0].numpy(), np.asarray(s.legal_actions_mask(), bool))
            line.append(kid)
    assert found["tree"] >= 5 and found["root"] >= 5, found


def oware_rule_counts(n, seed):
    """How often random play reaches oware's rare rules, from OpenSpiel and a scalar sowing
    written here (independent of the twin): repetition, grand slam, must-feed, no legal move."""
    import pyspiel
    g = pyspiel.load_game("oware")
    rng = np.random.default_rng(seed)
    c = dict(repetition=0, grand_slam=0, must_feed=0, no_move=0)
    for _ in range(n):
        s = g.new_initial_state()
        seen = {((4,) * 12, (0, 0), 0)}
        while not s.is_terminal():
            o = np.rint(np.asarray(s.observation_tensor(0), np.float64) * 48).astype(int)
            seeds, score, p = o[:12].copy(), o[12:].copy(), s.current_player()
            legal = s.legal_actions()
            if seeds[6 * (1 - p): 6 * (2 - p)].sum() == 0 and len(legal) < np.count_nonzero(seeds[6 * p: 6 * p + 6]):
                c["must_feed"] += 1
            a = int(rng.choice(legal))
            house = i = 6 * p + a
            k, seeds[house] = seeds[house], 0
            while k:
                i = (i + 1) % 12
                if i != house:
                    seeds[i] += 1
                    k -= 1
            if i // 6 != p:
                lo = (i // 6) * 6
                if not seeds[i + 1: lo + 6].any() and all(2 <= seeds[j] <= 3 for j in range(lo, i + 1)):
                    c["grand_slam"] += 1
                else:
                    while i >= lo and 2 <= seeds[i] <= 3:
                        score[p] += seeds[i]
                        seeds[i] = 0
                        i -= 1
            if score.sum() > o[12:].sum():
                seen = set()
            key = (tuple(seeds), tuple(score), 1 - p)
            s.apply_action(a)
            if key in seen:
                c["repetition"] += 1
                assert s.is_terminal()
            elif s.is_terminal() and score.max() <= 24 and not (score == 24).all():
                c["no_move"] += 1
            seen.add(key)
    return c


def test_oware_random_games_reach_every_rare_rule():
    """Random samples the size of the differential test's (500 games) play through each rare rule
    several times (2,000 games: 178 repetitions, 129 grand slams, 1,103 must-feed positions, 290
    games ended with no legal move), so the differential test exercises them."""
    counts = oware_rule_counts(500, 1)
    assert min(counts.values()) >= 5, counts


def random_history(game, length, seed):
    """Up to `length` random actions, stopping before the game would end."""
    import pyspiel
    rng = np.random.default_rng(seed)
    s = pyspiel.load_game(game).new_initial_state()
    for _ in range(length):
        c = s.clone()
        c.apply_action(int(rng.choice(s.legal_actions())))
        if c.is_terminal():
            break
        s = c
    return s.history()


def test_checkers_random_games_reach_every_rare_rule():
    """500 random games (the differential test's sample size) play through each rarer rule
    (seed 1: 1,091 continued jumps, 1,558 crownings, 120 crowning jumps that end the turn
    although the new king could jump on, 63 draws after 40 quiet actions, 18 blocked losses)."""
    counts = checkers_rule_counts(500, 1)
    assert min(counts.values()) >= 5, counts


def checkers_rule_counts(n, seed):
    """How often random play reaches checkers' rarer rules, read from OpenSpiel alone: a jump
    that goes on (same player again), a crowning, a crowning jump that ends the turn although the
    new king could jump on, a draw after 40 quiet actions, a loss with pieces left (blocked)."""
    import pyspiel
    g = pyspiel.load_game("checkers")
    rng = np.random.default_rng(seed)
    c = dict(multi_jump=0, crowned=0, crowned_jump_ends_turn=0, quiet_draw=0, blocked_loss=0)
    for _ in range(n):
        s = g.new_initial_state()
        while not s.is_terminal():
            p = s.current_player()
            a = int(rng.choice(s.legal_actions()))
            before = np.asarray(s.observation_tensor(0)).reshape(5, 8, 8)
            s.apply_action(a)
            after = np.asarray(s.observation_tensor(0)).reshape(5, 8, 8)
            jump = a % 2 == 1
            crowned = after[1 + 2 * p].sum() > before[1 + 2 * p].sum()
            c["crowned"] += bool(crowned)
            if jump and not s.is_terminal() and s.current_player() == p:
                c["multi_jump"] += 1
            if jump and crowned and not s.is_terminal() and s.current_player() != p:
                # would the new king have had a jump? (then the turn ended only by the crowning)
                cell = a // 8
                r, col, d = cell // 8 + 2 * (-1, -1, 1, 1)[a // 2 % 4], cell % 8 + 2 * (-1, 1, 1, -1)[a // 2 % 4], 0
                for dr, dc in ((-1, -1), (-1, 1), (1, 1), (1, -1)):
                    r2, c2 = r + 2 * dr, col + 2 * dc
                    if 0 <= r2 < 8 and 0 <= c2 < 8 and after[4, r2, c2] and after[2 - 2 * p: 4 - 2 * p, r + dr, col + dc].any():
                        d = 1
                c["crowned_jump_ends_turn"] += d
        ret = s.returns()
        if ret[0] == 0:
            c["quiet_draw"] += 1
        else:
            last = np.asarray(s.observation_tensor(0)).reshape(5, 8, 8)
            loser = 0 if ret[0] < 0 else 1
            c["blocked_loss"] += bool(last[2 * loser: 2 * loser + 2].any())
    return c


def test_every_twin_keeps_the_contract():
    """Every registered twin implements the abstract contract (an incomplete twin cannot even be
    made)."""
    import azscale.engines as engines
    from azscale.engines.twin import TensorGame
    for game in engines.TWINS:
        assert isinstance(make_tensor_engine(game), TensorGame)

    class Incomplete(TensorGame):
        def new_states(self, n):
            return {}
    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_connect_four_twin_choice():
    """Bitboards where (rows + 1) * columns fits 63 bits, the board-array twin elsewhere (both are
    in the differential tests above)."""
    assert type(make_tensor_engine("connect_four")).__name__ == "ConnectFourBits"
    assert type(make_tensor_engine("connect_four(rows=9,columns=8)")).__name__ == "ConnectFourTensor"


@pytest.mark.parametrize("game", GAMES)
def test_replay_many_equals_replay_of_each_history(game):
    """`replay_many` steps all histories together (a resumed run replays its games in flight
    with it): the same states as `replay` of each, for empty, short, long and finished games."""
    te, se = make_tensor_engine(game), SpielEngine(game)
    rng = np.random.default_rng(4)
    hists = [[]]
    for _ in range(24):
        st, h = se.spiel_game.new_initial_state(), []
        stop = int(rng.integers(1, 400))
        while not st.is_terminal() and len(h) < stop:
            h.append(int(rng.choice(st.legal_actions())))
            st.apply_action(h[-1])
        hists.append(h)
    assert len(set(map(len, hists))) >= 4
    many = te.replay_many(hists)
    one = [te.replay(h) for h in hists]
    for k, v in many.items():
        assert torch.equal(v, torch.cat([o[k] for o in one])), (game, k)
