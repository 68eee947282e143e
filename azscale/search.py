"""Batched PUCT Monte-Carlo tree search over many games at once.

The tree is a set of arrays with a batch axis (in the style of DeepMind's mctx): node visit
counts, value sums, priors, child indices, parents. One simulation *wave* descends every game's
tree by one path, expands one leaf per game, evaluates all new non-terminal leaves with ONE
network call, and backs the values up. Terminal leaves take their exact game value.

Value frames: the network's value is from the side to move (`nets.FRAME_SIDE_TO_MOVE`); the
tree stores every value in player 0's frame, so turns need not alternate (checkers' multi-jumps)
and each node's player picks children by its own sign. Unvisited children count as Q = 0, as in
OpenSpiel's AlphaZero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .engines.base import Engine, StepInfo

# evaluate(obs [k, obs_size] float32, legal [k, A] bool) -> (priors [k, A], value [k] side-to-move)
Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class SearchStats:
    simulations: int = 0       # leaf evaluations summed over games (terminal hits included)
    net_calls: int = 0
    net_states: int = 0        # states sent to the network
    net_seconds: float = 0.0


@dataclass
class SearchResult:
    visits: np.ndarray         # [B, A] root child visit counts
    root_value: np.ndarray     # [B] mean value at the root, side-to-move frame of the root
    priors: np.ndarray         # [B, A] root priors after noise


def to_player0(value_stm: np.ndarray, player: np.ndarray) -> np.ndarray:
    """Side-to-move value -> player 0's frame."""
    return np.where(player == 1, -value_stm, value_stm).astype(np.float32)


class BatchedMCTS:
    def __init__(self, engine: Engine, evaluate: Evaluator, simulations: int, c_puct: float = 2.0,
                 dirichlet_alpha: float = 1.0, dirichlet_epsilon: float = 0.25):
        self.engine = engine
        self.evaluate = evaluate
        self.simulations = int(simulations)
        self.c_puct = float(c_puct)
        self.alpha = float(dirichlet_alpha)
        self.epsilon = float(dirichlet_epsilon)
        self.stats = SearchStats()

    def _eval(self, obs: np.ndarray, legal: np.ndarray):
        import time
        t = time.perf_counter()
        priors, values = self.evaluate(obs, legal)
        self.stats.net_seconds += time.perf_counter() - t
        self.stats.net_calls += 1
        self.stats.net_states += len(obs)
        return priors, values

    def run(self, roots, rng: np.random.Generator | None, noise: bool = True,
            root_info: StepInfo | None = None) -> SearchResult:
        """Search from each of `roots` (non-terminal states). `rng` draws the Dirichlet noise."""
        engine = self.engine
        B, A, S = len(roots), engine.num_actions, self.simulations
        N = S + 1
        info = engine.info(roots) if root_info is None else root_info
        assert not info.terminal.any(), "search roots must be non-terminal"

        visits = np.zeros((B, N), np.int32)
        value_sum = np.zeros((B, N), np.float32)
        prior = np.zeros((B, N, A), np.float32)
        children = np.full((B, N, A), -1, np.int32)
        parent = np.full((B, N), -1, np.int32)
        player = np.full((B, N), -1, np.int8)
        terminal = np.zeros((B, N), bool)
        legal = np.zeros((B, N, A), bool)
        states = np.empty((B, N), dtype=object)
        num_nodes = np.ones(B, np.int32)
        rows = np.arange(B)

        root_priors, root_v = self._eval(info.obs, info.legal)
        if noise and self.epsilon > 0:
            assert rng is not None
            noise_draw = rng.dirichlet(np.full(A, self.alpha), size=B).astype(np.float32) * info.legal
            noise_draw /= np.maximum(noise_draw.sum(1, keepdims=True), 1e-12)
            root_priors = (1 - self.epsilon) * root_priors + self.epsilon * noise_draw
        prior[:, 0] = root_priors
        legal[:, 0] = info.legal
        player[:, 0] = info.player
        visits[:, 0] = 1
        value_sum[:, 0] = to_player0(root_v, info.player)
        for b in range(B):
            states[b, 0] = roots[b]

        c = self.c_puct
        for _ in range(S):
            # --- selection: descend until a child that does not exist yet, or a terminal node
            node = np.zeros(B, np.int32)
            leaf_parent = np.full(B, -1, np.int32)
            leaf_action = np.full(B, -1, np.int32)
            active = rows.copy()
            while active.size:
                n = node[active]
                ch = children[active, n]                                   # [k, A]
                seen = ch >= 0
                ch_idx = np.where(seen, ch, 0)
                ch_vis = np.where(seen, visits[active[:, None], ch_idx], 0)
                ch_w = np.where(seen, value_sum[active[:, None], ch_idx], 0.0)
                q0 = np.where(ch_vis > 0, ch_w / np.maximum(ch_vis, 1), 0.0)
                sign = np.where(player[active, n] == 1, -1.0, 1.0)[:, None]
                u = c * prior[active, n] * np.sqrt(visits[active, n])[:, None] / (1.0 + ch_vis)
                score = np.where(legal[active, n], sign * q0 + u, -np.inf)
                a = score.argmax(1).astype(np.int32)
                nxt = ch[np.arange(active.size), a]
                new = nxt < 0
                leaf_parent[active[new]] = n[new]
                leaf_action[active[new]] = a[new]
                go = active[~new]
                node[go] = nxt[~new]
                active = go[~terminal[go, node[go]]]

            # --- expansion and evaluation: one network call for every new non-terminal leaf
            leaf_v0 = np.zeros(B, np.float32)
            exp = np.nonzero(leaf_action >= 0)[0]
            old = np.nonzero(leaf_action < 0)[0]              # ended on an existing terminal node
            if old.size:
                leaf_v0[old] = value_sum[old, node[old]] / np.maximum(visits[old, node[old]], 1)
            if exp.size:
                par = leaf_parent[exp]
                kids, kinfo = engine.expand(states[exp, par], leaf_action[exp])
                nid = num_nodes[exp]
                num_nodes[exp] += 1
                children[exp, par, leaf_action[exp]] = nid
                parent[exp, nid] = par
                player[exp, nid] = kinfo.player
                terminal[exp, nid] = kinfo.terminal
                legal[exp, nid] = kinfo.legal
                for j, b in enumerate(exp):
                    states[b, nid[j]] = kids[j]
                v0 = kinfo.returns[:, 0].astype(np.float32)
                live = np.nonzero(~kinfo.terminal)[0]
                if live.size:
                    p, v = self._eval(kinfo.obs[live], kinfo.legal[live])
                    prior[exp[live], nid[live]] = p
                    v0[live] = to_player0(v, kinfo.player[live])
                leaf_v0[exp] = v0
                node[exp] = nid
                # a terminal node's stored mean is its exact value: seed it so revisits reuse it
            # --- backup along the path to the root
            cur = node.copy()
            idx = rows
            while idx.size:
                visits[idx, cur[idx]] += 1
                value_sum[idx, cur[idx]] += leaf_v0[idx]
                cur[idx] = parent[idx, cur[idx]]
                idx = idx[cur[idx] >= 0]
            self.stats.simulations += B

        ch = children[:, 0]
        root_visits = np.where(ch >= 0, visits[rows[:, None], np.where(ch >= 0, ch, 0)], 0)
        root_value0 = value_sum[:, 0] / visits[:, 0]
        root_value = np.where(info.player == 1, -root_value0, root_value0)
        return SearchResult(root_visits.astype(np.int32), root_value.astype(np.float32), root_priors)


def select_actions(visits: np.ndarray, temperature: np.ndarray | float, rng: np.random.Generator | None) -> np.ndarray:
    """Pick one action per row: sample proportional to visits^(1/T), or the most visited at T=0."""
    visits = np.asarray(visits, np.float64)
    B = len(visits)
    temps = np.broadcast_to(np.asarray(temperature, np.float64), (B,))
    out = visits.argmax(1)
    hot = np.nonzero(temps > 0)[0]
    if hot.size:
        assert rng is not None
        v = visits[hot]
        logv = np.where(v > 0, np.log(np.maximum(v, 1e-300)), -np.inf) / temps[hot][:, None]
        logv -= logv.max(1, keepdims=True)
        p = np.exp(logv)
        p /= p.sum(1, keepdims=True)
        u = rng.random(hot.size)[:, None]
        out[hot] = np.minimum((p.cumsum(1) < u).sum(1), visits.shape[1] - 1)
        # guard against rounding picking a zero-visit action
        bad = visits[hot, out[hot]] <= 0
        out[hot[bad]] = visits[hot[bad]].argmax(1)
    return out.astype(np.int64)
