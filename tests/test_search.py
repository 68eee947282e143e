import math

import numpy as np
import pyspiel
import pytest
import torch
from open_spiel.python.algorithms import mcts as os_mcts

from azscale.engines import SpielEngine
from azscale.engines import make_tensor_engine
from azscale.nets import build
from azscale.search import MCTS, select_actions, to_player0
from azscale.search import policy
from azscale.search.mcts import WIDE_ROWS_MIN
from azscale.search.inspect import is_host_read, wave_ops
from azscale.search.tree import UNCOUNTED, Selection


class Uniform(torch.nn.Module):
    """Uniform priors over legal moves and a value of 0: the search must find tactics itself."""

    def __init__(self, num_actions):
        super().__init__()
        self.a = num_actions

    def forward(self, obs):
        return torch.zeros(obs.shape[0], self.a, device=obs.device), torch.zeros(obs.shape[0], device=obs.device)


# (game, actions leading to the position, winning move, blocking move)
WIN_IN_ONE = [
    ("tic_tac_toe", [0, 3, 1, 4], 2),                     # x: 0,1 -> plays 2
    ("connect_four", [0, 1, 0, 1, 0, 1], 0),              # x stacks column 0 three high
]
BLOCK = [
    ("tic_tac_toe", [0, 4, 8, 2], 6),                     # o threatens 2-4-6; x must take 6
    ("connect_four", [0, 1, 6, 1, 6, 1], 1),              # o has three in column 1; x must block
]
ENGINES = ["spiel", "tensor"]


def engine(kind, game):
    return SpielEngine(game) if kind == "spiel" else make_tensor_engine(game)


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("game,moves,win", WIN_IN_ONE)
def test_takes_win_in_one(kind, game, moves, win):
    eng = engine(kind, game)
    res = MCTS(eng, Uniform(eng.num_actions), simulations=200).run(eng.replay_many([moves, moves]))
    assert (res.visits.argmax(1) == win).all()
    assert (res.root_value > 0.5).all()      # side to move is winning: positive in its own frame


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("game,moves,block", BLOCK)
def test_blocks_loss_in_one(kind, game, moves, block):
    eng = engine(kind, game)
    res = MCTS(eng, Uniform(eng.num_actions), simulations=400).run(eng.replay_many([moves]))
    assert res.visits[0].argmax() == block


@pytest.mark.parametrize("kind", ENGINES)
def test_value_frame_on_a_won_position(kind):
    """Player 1 (o) to move with a win available: the root value must be +1 in o's frame,
    i.e. -1 in player 0's frame."""
    eng = engine(kind, "tic_tac_toe")
    roots = eng.replay_many([[0, 3, 1, 4, 8]])      # o has 3,4 -> 5 wins; x threatens 2
    res = MCTS(eng, Uniform(9), simulations=300).run(roots)
    assert res.visits[0].argmax() == 5
    assert res.root_value[0] > 0.5
    assert to_player0(res.root_value, torch.tensor([1]))[0] < -0.5


class Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, obs):
        self.calls.append(obs.shape[0])
        return self.inner(obs)


@pytest.mark.parametrize("kind", ENGINES)
def test_search_is_batched_one_network_call_per_wave(kind):
    eng = engine(kind, "connect_four")
    model = Counting(Uniform(7))
    mcts = MCTS(eng, model, simulations=20)
    res = mcts.run(eng.new_states(32), noise=True, generator=torch.Generator().manual_seed(0))
    assert model.calls == [32] * 21                 # the roots, then one call per simulation wave
    assert mcts.stats.simulations == 32 * 20
    assert res.visits.sum(1).tolist() == [20] * 32


def test_select_actions_temperature():
    gen = torch.Generator().manual_seed(0)
    visits = torch.tensor([[0, 10, 30, 0]] * 4000)
    assert (select_actions(visits, 0.0, gen) == 2).all()
    sampled = select_actions(visits, 1.0, gen)
    assert set(sampled.tolist()) == {1, 2}
    assert abs((sampled == 2).float().mean().item() - 0.75) < 0.03
    half = select_actions(visits, 0.5, gen)          # visits^2: 900 / 1000
    assert abs((half == 2).float().mean().item() - 0.9) < 0.02
    mixed = select_actions(visits[:4], torch.tensor([0.0, 1.0, 0.0, 1.0]), gen)
    assert mixed[0] == 2 and mixed[2] == 2


def test_dirichlet_noise_is_a_dirichlet_over_the_legal_moves():
    gen = torch.Generator().manual_seed(3)
    legal = torch.tensor([[True, False, True, True, False]] * 20000)
    d = policy.dirichlet(0.5, legal, gen)
    assert torch.allclose(d.sum(1), torch.ones(20000)) and (d[:, [1, 4]] == 0).all()
    # Dirichlet(0.5, 0.5, 0.5): each component Beta(0.5, 1.0): mean 1/3, variance 2/27 * ... = 0.0889
    assert abs(d[:, 0].mean().item() - 1 / 3) < 0.01
    assert abs(d[:, 0].var().item() - (1 / 3) * (2 / 3) / 2.5) < 0.005


# --- the reference: OpenSpiel's own MCTS ---------------------------------------------------------

class _Evaluator(os_mcts.Evaluator):
    """One fixed network as an OpenSpiel evaluator, in float64 exactly as the search computes."""

    def __init__(self, model):
        self.model = model

    def _run(self, state):
        obs = torch.tensor([state.observation_tensor()], dtype=torch.float32)
        legal = torch.tensor([state.legal_actions_mask()], dtype=torch.bool)
        with torch.inference_mode():
            logits, v = self.model(obs)
        return policy.masked_softmax(logits.double(), legal)[0], float(v.double()[0])

    def evaluate(self, state):
        _, v = self._run(state)
        p = state.current_player()
        return [v, -v] if p == 0 else [-v, v]

    def prior(self, state):
        pr, _ = self._run(state)
        return [(a, float(pr[a])) for a in state.legal_actions()]


class _NoShuffle(np.random.RandomState):
    """OpenSpiel shuffles children before taking the max; ours break ties by the lowest id."""

    def shuffle(self, x):
        return None


def _puct_with_terminals(node, parent_explore_count, uct_c):
    """OpenSpiel's PUCT, but a visited terminal child keeps its exploration term (ours does), and
    the terms associated as ours: Q + (c * sqrt(N)) * P / (1 + n)."""
    q = node.explore_count and node.total_reward / node.explore_count
    return q + (uct_c * math.sqrt(parent_explore_count)) * node.prior / (node.explore_count + 1)


def _openspiel_visits(game, model, state, sims, c):
    bot = os_mcts.MCTSBot(game, c, sims + 1, _Evaluator(model), solve=False, random_state=_NoShuffle(0),
                          child_selection_fn=_puct_with_terminals)      # sims + 1: it counts the root's evaluation
    root = bot.mcts_search(state)
    out = np.zeros(game.num_distinct_actions(), np.int64)
    for ch in root.children:
        out[ch.action] = ch.explore_count
    return out


def _positions(game, n, seed):
    """n positions from random games, none terminal, spread over the game's length."""
    g = pyspiel.load_game(game)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        s = g.new_initial_state()
        stop = int(rng.integers(0, 80))
        while not s.is_terminal() and len(s.history()) < stop:
            c = s.clone()
            c.apply_action(int(rng.choice(s.legal_actions())))
            if c.is_terminal():
                break
            s = c
        out.append(s.history())
    return out


@pytest.mark.parametrize("game,n,sims", [("tic_tac_toe", 100, 100), ("connect_four", 100, 100),
                                         ("pentago", 100, 30), ("oware", 100, 100), ("checkers", 100, 30)])
@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("net", ["mlp", "uniform"])
def test_root_visits_equal_openspiels_mcts(game, n, sims, kind, net):
    """With one fixed network, no noise and the same c and simulation count, the root visit
    counts equal those of OpenSpiel's Python MCTSBot on every position (the four OpenSpiel
    conventions aligned in `_openspiel_visits`). The uniform network makes exact ties common,
    so the tie rule is tested too (OpenSpiel's shuffle left on fails it)."""
    torch.manual_seed(7)
    g = pyspiel.load_game(game)
    model = (build("mlp", tuple(g.observation_tensor_shape()), g.num_distinct_actions(), 16, 2).eval()
             if net == "mlp" else Uniform(g.num_distinct_actions()))
    hists = _positions(game, n, seed=11)
    eng = engine(kind, game)
    ours = MCTS(eng, model, sims, c_puct=2.0, dtype=torch.float64).run(eng.replay_many(hists)).visits.numpy()
    for i, h in enumerate(hists):
        s = g.new_initial_state()
        for a in h:
            s.apply_action(a)
        ref = _openspiel_visits(g, model, s, sims, 2.0)
        assert np.array_equal(ours[i], ref), (game, i, h, ours[i], ref)


# --- shape discipline: no host reads inside a wave, the same ops for any batch --------------------

@pytest.mark.parametrize("game", ["connect_four", "pentago", "oware", "checkers", "tic_tac_toe"])
@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize("native", [False, True])
def test_a_wave_has_no_host_reads_and_the_same_ops_for_any_batch(game, kind, native):
    """The device search (`native=False`, what a GPU runs) and the CPU's tree-walk kernels alike."""
    eng = engine(kind, game)
    model = Uniform(eng.num_actions)
    hists = [_positions(game, 1, seed=5)[0]]
    if game == "pentago":
        hists.append([])            # the opening: K = A = 288, rows in action order on the CPU
    for hist in hists:
        m = MCTS(eng, model, 24, native=native)
        small = wave_ops(m, eng.replay_many([hist] * 4))
        large = wave_ops(MCTS(eng, model, 24, native=native), eng.replay_many([hist] * 64))
        assert len(small) == 23
        for wave in small + large:
            bad = [op for op in wave if is_host_read(op)]
            assert not bad, bad
        assert [len(w) for w in small] == [len(w) for w in large]      # op count independent of the batch
        if not hist:
            assert (m.tree.legal.shape[2] > 0) == native


@pytest.mark.parametrize("game", ["tic_tac_toe", "connect_four", "pentago", "oware", "checkers"])
@pytest.mark.parametrize("kind", ENGINES)
def test_cpu_tree_kernels_equal_the_device_search(game, kind):
    """`native.select` / `native.backup` (per-game loops on the CPU) compute what the masked
    fixed-shape descent computes: the same visits, root values and whole trees, with root noise,
    in float32 and float64, on every seed game and both engines. Each search object searched
    other roots in the same tree slots first (what it keeps per node must be reset per search)."""
    torch.manual_seed(1)
    eng = engine(kind, game)
    model = build("mlp", eng.obs_shape, eng.num_actions, 16, 2).eval()
    pos = _positions(game, 48, seed=3)
    roots, before = eng.replay_many(pos), eng.replay_many(pos[1:] + pos[:1])
    for dtype in (torch.float32, torch.float64):
        out = []
        for native in (False, True):
            m = MCTS(eng, model, 40, dtype=dtype, native=native)
            m.run(before, noise=True, generator=torch.Generator().manual_seed(6))
            tree = m.tree
            res = m.run(roots, noise=True, generator=torch.Generator().manual_seed(5))
            assert m.tree is tree                      # the same storage, searched again
            out.append((res, m.tree))
        (a, ta), (b, tb) = out
        B, N, K = tb.shape
        # rows in action order where slots are as many as actions, and many (pentago, pyspiel's checkers)
        assert (tb.legal.shape[2] > 0) == (K == eng.num_actions >= WIDE_ROWS_MIN), (game, K)
        assert ta.legal.shape[2] == 0
        # the CPU search keeps a new node's logits until a descent first passes it (then the
        # softmax, in numba): where it did, the priors are the device search's to float rounding
        normed = tb.normed.clone()
        # nodes below the roots were passed (and normalised) in many trees, not in all
        assert int(normed[:, 1:].any(1).sum()) >= normed.shape[0] // 4 and not bool(normed.all())
        tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-15)
        assert torch.allclose(ta.prior[normed], tb.prior[normed], **tol), (game, dtype)
        assert torch.equal(ta.acts[normed], tb.acts[normed]), (game, dtype)
        assert torch.equal(a.visits, b.visits), (game, dtype)
        assert torch.equal(a.root_value, b.root_value), (game, dtype)
        for f in ("visits", "wsum", "children", "num_nodes", "max_depth", "term", "player", "depth"):
            assert torch.equal(getattr(ta, f), getattr(tb, f)), (game, dtype, f)
        # the CPU walk's slot counts, taken where a descent first passed a node
        ns = tb.nslots
        assert torch.equal(ns != UNCOUNTED, normed), (game, dtype)
        assert torch.equal(ns[normed], (ta.acts >= 0).sum(2).to(ns.dtype)[normed]), (game, dtype)
        # the nodes no descent passed, laid out as a first pass would: every node of every tree
        # then has the device search's action slots and priors
        from azscale.search import native
        made = torch.arange(N)[None, :] < tb.num_nodes[:, None].long()
        native.finish_rows(tb.flat(), torch.nonzero(made.view(-1)).view(-1).numpy())
        assert torch.equal(ta.acts[made], tb.acts[made]), (game, dtype)
        assert torch.allclose(ta.prior[made], tb.prior[made], **tol), (game, dtype)


def test_cpu_tree_kernels_pad_paths_and_stop_where_the_device_search_stops():
    """One wave's select outputs, compared field by field (paths padded with NO_NODE after the leaf;
    a descent that ends on a terminal node expands nothing), on a tree that already holds a
    terminal node: connect_four one move from a win."""
    from azscale.search import native
    from azscale.search.mcts import select
    eng = make_tensor_engine("connect_four")
    roots = eng.replay_many([[0, 1, 0, 1, 0, 1], [3], []] * 4)
    m = MCTS(eng, Uniform(eng.num_actions), 30, native=False)
    m.run(roots)
    tf = m.tree.flat()
    base = torch.arange(12) * 31
    assert bool(tf.term.any())
    for D in (1, 2, 4, 8, 16):
        ref = select(tf, base, 2.0, D)
        got = native.select(tf, base, 2.0, D)
        assert type(ref) is type(got) is Selection
        for r, g in zip(ref, got):
            assert r.dtype == g.dtype and torch.equal(r, g), D


def _two_child_trees(dtype):
    """Two hand-built trees of 4 node slots, root with two expanded children, player 0 to move.
    Tree 0 is a near tie that float32 and float64 arithmetic decide differently (root 9 visits;
    children 3 visits, value sum -1.5, prior float32(1/18) and 5 visits, -2.5, float32(1/12)). Tree 1 has a NaN
    value sum in its second child (a diverged network): torch.argmax takes a NaN as the maximum."""
    from azscale.search.tree import Tree
    t = Tree.allocate(2, 4, 2, "cpu", dtype)
    t.reset()
    t.acts[:, 0] = torch.tensor([0, 1], dtype=torch.int32)
    t.player[:, :3] = 0
    t.children[:, 0] = torch.tensor([1, 2], dtype=torch.int32)
    t.visits[:, 0] = 9
    t.prior[0, 0] = torch.tensor([1 / 18, 1 / 12], dtype=torch.float32).to(dtype)   # the same numbers
    t.visits[0, 1], t.wsum[0, 1], t.visits[0, 2], t.wsum[0, 2] = 3, -1.5, 5, -2.5
    t.prior[1, 0] = torch.tensor([0.9, 0.1], dtype=dtype)
    t.visits[1, 1], t.wsum[1, 1], t.visits[1, 2], t.wsum[1, 2] = 2, 1.0, 2, float("nan")
    return t.flat()


def test_cpu_tree_kernels_compute_in_the_trees_dtype_and_take_nan_as_argmax_does():
    """Where float32 and float64 PUCT scores order two children differently, the CPU kernel
    chooses what the device search chooses in each dtype; a NaN score wins as in torch.argmax;
    the trees' base offsets are the caller's (here in reverse order)."""
    from azscale.search import native
    from azscale.search.mcts import select
    picks = {}
    for dtype in (torch.float32, torch.float64):
        tf = _two_child_trees(dtype)
        for base in (torch.tensor([0, 4]), torch.tensor([4, 0])):
            ref = select(tf, base, 2.0, 3)
            got = native.select(tf, base, 2.0, 3)
            for r, g in zip(ref, got):
                assert r.dtype == g.dtype and torch.equal(r, g), (dtype, base)
        leaf = select(tf, torch.tensor([0, 4]), 2.0, 3).node
        picks[dtype] = leaf.tolist()
    assert picks[torch.float32][0] != picks[torch.float64][0]      # the example does discriminate
    assert picks[torch.float32][1] == picks[torch.float64][1] == 2   # the NaN child


def test_cpu_tree_kernels_build_without_a_writable_cache(monkeypatch):
    """numba refuses `cache=True` where no cache directory is writable (a read-only install):
    the kernels are then compiled for the process instead of failing the search."""
    import numba.core.caching as caching
    from azscale.search import native

    def unwritable(self):
        raise PermissionError("read-only")
    monkeypatch.setattr(caching._CacheLocator, "ensure_cache_path", unwritable)
    for name in native.HELPERS:             # decorated again here: no cache, compiled now
        monkeypatch.setattr(native, name, native._njit(getattr(native, name).py_func))
    fresh = native._make(np.float32)
    monkeypatch.setitem(native._KERNELS, torch.float32, fresh)
    tf = _two_child_trees(torch.float32)
    got = native.select(tf, torch.tensor([0, 4]), 2.0, 3)
    from azscale.search.mcts import select
    assert got.node.tolist() == select(tf, torch.tensor([0, 4]), 2.0, 3).node.tolist()


def test_cpu_tree_kernels_are_served_from_numba_disk_cache_in_a_new_process():
    """numba keys a cached kernel by its closure: a numba function captured there carries a
    per-process id, and every process (each self-play worker, each tournament worker) would
    compile the walk again and add a file to the cache. The kernels' closures hold no numba
    function, and a second process loads `select` from the cache instead of compiling it."""
    import subprocess
    import sys
    from numba.core.registry import CPUDispatcher
    from azscale.search import native
    for dt in (torch.float32, torch.float64):
        for k in native._kernels(dt):
            cells = k.py_func.__closure__ or ()
            assert not any(isinstance(c.cell_contents, CPUDispatcher) for c in cells), k.py_func.__name__
    code = ("import torch\nfrom azscale.search import native\nfrom azscale.search.tree import Tree\n"
            "t = Tree.allocate(2, 4, 2, 'cpu'); t.reset()\n"
            "native.select(t.flat(), torch.tensor([0, 4]), 2.0, 3)\n"
            "k = native._kernels(torch.float32)[0]\n"
            "print(type(k._cache).__name__, sum(k.stats.cache_hits.values()))\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    cache, hits = runs[1].stdout.split()
    if cache == "NullCache":
        pytest.skip("numba has no writable cache directory here")
    assert int(hits) >= 1, runs[1].stdout


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_prior_normalisation_is_the_masked_softmax(dtype):
    """The CPU search's lazy softmax (`native._normalise`, run where a descent first passes a
    node) against `policy.masked_softmax`: ordinary rows, huge and -inf logits, one legal slot,
    a NaN and a +inf logit (NaN priors, as torch gives), and the rows that only its clamps decide
    (every legal logit -inf or below -1e30, no legal slot: all zeros, not uniform or NaN)."""
    from azscale.search import native, policy
    g = torch.Generator().manual_seed(4)
    K = 24
    R = 12
    logits = (torch.randn(R, K, generator=g) * 3).to(dtype)
    acts = torch.arange(K, dtype=torch.int32).repeat(R, 1)
    acts[1, 10:] = -1                                  # fewer legal slots, padded
    acts[2, 1:] = -1                                   # one legal slot
    logits[3, 5] = 1e4                                 # one huge logit
    logits[4, :6] = float("-inf")                      # some legal slots at -inf
    logits[5, :] = -1e4                                # all very negative
    logits[6, 7] = float("nan")
    logits[7] = 0.0                                    # uniform
    logits[8] = float("-inf")                          # every legal logit -inf: the max's clamp
    acts[9] = -1                                       # no legal slot: the sum's clamp
    logits[10] = -1e31                                 # all below -1e30: zeros (uniform without the clamp)
    acts[10, 12:] = -1
    logits[11, 3] = float("inf")                       # +inf: inf - inf, NaN priors
    want = policy.masked_softmax(logits, acts >= 0)
    got = policy.gather_slots(logits, acts).numpy().copy()
    normalise = native._normaliser(dtype)
    for r in range(R):
        normalise(got, acts.numpy(), r)
    got = torch.as_tensor(got)
    nan = torch.zeros(R, dtype=torch.bool)
    nan[[6, 11]] = True
    for r in range(R):
        assert bool(torch.isnan(got[r]).all()) == bool(torch.isnan(want[r]).all()) == bool(nan[r]), r
    assert bool((got[8:11] == 0).all()) and bool((want[8:11] == 0).all())
    ok = ~nan
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-15)
    assert torch.allclose(got[ok], want[ok], **tol)
    assert torch.equal(got[ok] == 0, want[ok] == 0)    # the same zeros: padding and -inf slots


def test_native_search_is_refused_off_the_cpu():
    eng = make_tensor_engine("tic_tac_toe", device="meta")
    with pytest.raises(ValueError, match="CPU"):
        MCTS(eng, Uniform(eng.num_actions), 8, native=True)


def test_compiled_search_equals_eager():
    """torch.compile runs the same functions: identical visits on connect_four and on oware
    (whose tree step looks back along the path)."""
    torch.manual_seed(3)
    for game, hist in (("connect_four", [[], [3], [3, 3, 2], [0, 1, 0, 1, 0, 1]]),
                       ("oware", [[], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3], [5, 0, 4, 1]])):
        eng = make_tensor_engine(game)
        model = build("mlp", eng.obs_shape, eng.num_actions, 16, 2).eval()
        roots = eng.replay_many(hist * 8)
        a = MCTS(eng, model, 40).run(roots)
        b = MCTS(eng, model, 40, compile=True).run(roots)
        assert torch.equal(a.visits, b.visits), game
        assert torch.allclose(a.root_value, b.root_value, atol=1e-5)


def test_depth_bound_waits_for_nothing_and_is_never_short():
    """DepthBound's CUDA path with a device copy that lands `lag` waves late: the bound is the
    depth as of the wave that recorded it plus every wave since, so it is never below the true
    max depth + 1, whatever the lag."""
    from azscale.search.mcts import DepthBound

    class Late(DepthBound):
        def __init__(self, lag):
            super().__init__(torch.device("cpu"))
            self.cuda, self.lag, self.clock, self.sent = True, lag, 0, []

        def _record(self, value):
            self.sent.append((self.clock + self.lag, int(value)))

        def _ready(self):                          # the copy in flight has landed
            t, v = self.sent[-1]
            if t <= self.clock:
                self.buf.fill_(v)
            return t <= self.clock

    for lag in (0, 1, 2, 5):
        b, depth = Late(lag), 0
        b.start()
        for wave in range(60):
            assert b.levels() >= depth + 1, (lag, wave)
            depth += wave % 3 != 0                  # a wave deepens the trees by at most one level
            b.clock += 1
            b.after_wave(torch.tensor([depth]))
        assert b.levels() <= depth + 1 + lag + 1    # and it is not loose by more than the lag


def test_a_generator_state_from_another_device_reseeds_deterministically():
    from azscale.selfplay import restore_generator
    g = torch.Generator().manual_seed(5)
    saved = g.get_state()
    a, b = torch.Generator(), torch.Generator()
    restore_generator(a, saved)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=g))
    cuda_like = torch.zeros(16, dtype=torch.uint8)           # a CUDA generator's state is 16 bytes
    restore_generator(a, cuda_like)
    restore_generator(b, cuda_like)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    rng = np.random.default_rng(3)                           # a numpy state, from files before the move
    restore_generator(a, rng.bit_generator.state)
    restore_generator(b, rng.bit_generator.state)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))


def test_slots_put_the_legal_actions_first_in_ascending_order():
    """The CPU tree walk counts a node's legal slots once (up to the first empty slot) and reads
    no further (`native.select`'s `nslots`): `policy.slots` must pack every row's legal action
    ids first, ascending, then -1 padding, plain and grouped, for every K from the row's legal
    count up to A."""
    g = torch.Generator().manual_seed(8)
    for group, runs in ((1, 40), (8, 36), (3, 5)):
        legal = (torch.rand(64, runs, generator=g) < torch.rand(64, 1, generator=g)).repeat_interleave(group, 1)
        legal[0] = False
        legal[1] = True
        n = legal.sum(1)
        for K in range(1, runs * group + 1):
            fits = n <= K                                  # the caller's promise: at most K legal
            acts = policy.slots(legal[fits], K, group)
            for row, lg, cnt in zip(acts, legal[fits], n[fits]):
                assert torch.equal(row[:cnt], torch.nonzero(lg).squeeze(1).to(row.dtype)), (group, K)
                assert bool((row[cnt:] == -1).all()), (group, K)


def test_grouped_slots_equal_plain_slots():
    """`policy.slots(..., group=g)` packs aligned runs of g actions legal together; it must give
    exactly the plain packing: on synthetic run-uniform masks (empty rows, every K from 1 to A,
    below the legal count or not, multiples of g or not) and on pentago's legal masks at mixed
    depths; the pentago twin's masks must be run-uniform (what its `action_group` promises), and
    its search must give the same root visits with the grouped packing as without."""
    g = torch.Generator().manual_seed(3)
    for group, runs in ((8, 36), (3, 5), (2, 1), (8, 3)):
        cells = torch.rand(64, runs, generator=g) < torch.rand(64, 1, generator=g)
        cells[0] = False
        legal = cells.repeat_interleave(group, dim=1)
        for K in range(1, runs * group + 1):
            assert torch.equal(policy.slots(legal, K, group), policy.slots(legal, K)), (group, K)
    eng = make_tensor_engine("pentago")
    assert eng.action_group == 8
    s = eng.new_states(32)
    for _ in range(30):                    # a random subset of the games moves each time: mixed depths
        legal = eng.legal(s)
        assert torch.equal(legal, legal[:, ::8].repeat_interleave(8, dim=1))
        for K in sorted({int(legal.sum(1).max()), 288}):
            assert torch.equal(policy.slots(legal, K, 8), policy.slots(legal, K))
        live = legal.any(1) & ~eng.terminal(s) & (torch.rand(32, generator=g) < 0.6)
        idx = torch.nonzero(live).squeeze(1)
        if len(idx):
            pick = torch.multinomial(legal[idx].float(), 1, generator=g).squeeze(1)
            eng.put(s, idx, eng.step(eng.take(s, idx), pick))
    roots = eng.take(s, torch.nonzero(~eng.terminal(s)).squeeze(1))
    model = build("mlp", eng.obs_shape, eng.num_actions, 16, 2).eval()
    grouped = MCTS(eng, model, 60).run(roots)
    plain_eng = make_tensor_engine("pentago")
    plain_eng.action_group = 1
    plain = MCTS(plain_eng, model, 60).run(roots)
    assert torch.equal(grouped.visits, plain.visits) and torch.equal(grouped.priors, plain.priors)


def test_the_search_names_its_sentinels_once():
    """"Empty" in the search's arrays (an unexpanded child, an empty slot, a path's end, a
    terminal node's player, an uncounted row) is a named sentinel defined once in `tree.py`; the
    modules of both walks take it from there (the numba kernels as globals), and no integer -1
    is written anywhere else in the search's code (`.view(-1)` is a shape and `x[-1]` an index,
    not sentinels)."""
    import ast
    import pathlib
    from azscale.search import mcts, native, nodes, tree
    names = ("NO_CHILD", "NO_ACTION", "NO_NODE", "NO_PLAYER", "UNCOUNTED")
    assert all(getattr(tree, n) == -1 for n in names) and tree.ROOT == 0
    for mod, used in ((mcts, names[:4] + ("ROOT",)), (native, names[:3] + ("UNCOUNTED", "ROOT")),
                      (policy, ("NO_ACTION",)), (nodes, ("NO_PLAYER",))):
        for n in used:
            assert getattr(mod, n) is getattr(tree, n), (mod.__name__, n)
    bare = []
    for path in sorted(pathlib.Path(tree.__file__).parent.glob("*.py")):
        src = ast.parse(path.read_text())
        shapes = {id(a) for node in ast.walk(src) if isinstance(node, ast.Call)
                  and isinstance(node.func, ast.Attribute) and node.func.attr in ("view", "reshape") for a in node.args}
        shapes |= {id(n) for node in ast.walk(src) if isinstance(node, ast.Subscript) for n in ast.walk(node.slice)}
        defs = {id(node.value) for node in ast.walk(src) if isinstance(node, ast.Assign) and path.name == "tree.py"
                and all(isinstance(t, ast.Name) and t.id in names for t in node.targets)}
        for node in ast.walk(src):
            if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
                    and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int
                    and node.operand.value == 1
                    and id(node) not in shapes and id(node) not in defs):
                bare.append(f"{path.name}:{node.lineno}")
    assert not bare, bare
