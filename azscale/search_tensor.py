"""Device-resident batched MCTS for tensor engines.

The same algorithm and semantics as `search.BatchedMCTS` (PUCT, player-0 frame inside the tree,
unvisited children at Q = 0, exact terminal values, root Dirichlet noise, one network call per
simulation wave), but the tree and every node's game state are tensors on the engine's device,
and nothing loops over games or nodes in Python: each wave is a fixed sequence of batched
tensor operations (a loop over tree depth remains, bounded by the deepest path).
Root noise is drawn with numpy from the caller's generator, so a seed gives the same games as
the reference search's conventions; tests compare root visit distributions with `BatchedMCTS`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .search import SearchResult, SearchStats


class TensorMCTS:
    def __init__(self, engine, model: torch.nn.Module, simulations: int, c_puct: float = 2.0,
                 dirichlet_alpha: float = 1.0, dirichlet_epsilon: float = 0.25):
        self.engine = engine
        self.model = model
        self.device = engine.device
        self.simulations = int(simulations)
        self.c_puct = float(c_puct)
        self.alpha = float(dirichlet_alpha)
        self.epsilon = float(dirichlet_epsilon)
        self.stats = SearchStats()

    def _eval(self, obs: torch.Tensor, legal: torch.Tensor):
        t = time.perf_counter()
        with torch.inference_mode():
            logits, v = self.model(obs)
            p = torch.softmax(logits.masked_fill(~legal, float("-inf")), 1)
        self.stats.net_seconds += time.perf_counter() - t
        self.stats.net_calls += 1
        self.stats.net_states += int(obs.shape[0])
        return p.float(), v.float()

    def run(self, roots, rng: np.random.Generator | None, noise: bool = True, root_info=None) -> SearchResult:
        eng, dev = self.engine, self.device
        B, A, S = eng.size(roots), eng.num_actions, self.simulations
        N = S + 1
        rows = torch.arange(B, device=dev)
        visits = torch.zeros(B, N, dtype=torch.int32, device=dev)
        wsum = torch.zeros(B, N, device=dev)
        prior = torch.zeros(B, N, A, device=dev)
        children = torch.full((B, N, A), -1, dtype=torch.long, device=dev)
        parent = torch.full((B, N), -1, dtype=torch.long, device=dev)
        player = torch.full((B, N), -1, dtype=torch.int8, device=dev)
        term = torch.zeros(B, N, dtype=torch.bool, device=dev)
        legal = torch.zeros(B, N, A, dtype=torch.bool, device=dev)
        states = {k: torch.zeros((B, N, *v.shape[1:]), dtype=v.dtype, device=dev) for k, v in roots.items()}
        for k in states:
            states[k][:, 0] = roots[k]
        num_nodes = torch.ones(B, dtype=torch.long, device=dev)

        rlegal = eng.legal(roots)
        rplayer = eng.current_player(roots)
        p, v = self._eval(eng.observation(roots), rlegal)
        if noise and self.epsilon > 0:
            assert rng is not None
            d = rng.dirichlet(np.full(A, self.alpha), size=B).astype(np.float32)
            d = torch.from_numpy(d).to(dev) * rlegal
            d = d / d.sum(1, keepdim=True).clamp_min(1e-12)
            p = (1 - self.epsilon) * p + self.epsilon * d
        prior[:, 0], legal[:, 0], player[:, 0] = p, rlegal, rplayer
        visits[:, 0] = 1
        wsum[:, 0] = torch.where(rplayer == 1, -v, v)
        c = self.c_puct
        for _ in range(S):
            node = torch.zeros(B, dtype=torch.long, device=dev)
            leaf_parent = torch.full((B,), -1, dtype=torch.long, device=dev)
            leaf_action = torch.full((B,), -1, dtype=torch.long, device=dev)
            active = rows
            while active.numel():
                n = node[active]
                ch = children[active, n]                                        # [k, A]
                seen = ch >= 0
                chi = ch.clamp_min(0)
                cv = torch.where(seen, visits[active[:, None], chi], 0).float()
                cw = torch.where(seen, wsum[active[:, None], chi], 0.0)
                q0 = torch.where(cv > 0, cw / cv.clamp_min(1), 0.0)
                sign = torch.where(player[active, n] == 1, -1.0, 1.0)[:, None]
                u = c * prior[active, n] * visits[active, n].float().sqrt()[:, None] / (1.0 + cv)
                score = torch.where(legal[active, n], sign * q0 + u, float("-inf"))
                a = score.argmax(1)
                nxt = ch.gather(1, a[:, None]).squeeze(1)
                new = nxt < 0
                leaf_parent[active[new]] = n[new]
                leaf_action[active[new]] = a[new]
                go = active[~new]
                node[go] = nxt[~new]
                active = go[~term[go, node[go]]]
            leaf_v0 = torch.zeros(B, device=dev)
            exp = (leaf_action >= 0).nonzero().squeeze(1)
            old = (leaf_action < 0).nonzero().squeeze(1)
            if old.numel():
                leaf_v0[old] = wsum[old, node[old]] / visits[old, node[old]].clamp_min(1).float()
            if exp.numel():
                par = leaf_parent[exp]
                parent_states = {k: t[exp, par] for k, t in states.items()}
                kids = eng.step(parent_states, leaf_action[exp])
                nid = num_nodes[exp]
                num_nodes[exp] += 1
                children[exp, par, leaf_action[exp]] = nid
                parent[exp, nid] = par
                kt = eng.terminal(kids)
                kp = eng.current_player(kids)
                kl = eng.legal(kids) & ~kt[:, None]
                player[exp, nid], term[exp, nid], legal[exp, nid] = kp, kt, kl
                for k, t in states.items():
                    t[exp, nid] = kids[k]
                v0 = eng.returns(kids)[:, 0]
                live = (~kt).nonzero().squeeze(1)
                if live.numel():
                    sub = {k: t[live] for k, t in kids.items()}
                    pp, vv = self._eval(eng.observation(sub), kl[live])
                    prior[exp[live], nid[live]] = pp
                    v0[live] = torch.where(kp[live] == 1, -vv, vv)
                leaf_v0[exp] = v0
                node[exp] = nid
            cur = node
            idx = rows
            while idx.numel():
                ci = cur[idx]
                visits[idx, ci] += 1
                wsum[idx, ci] += leaf_v0[idx]
                cur = cur.clone()
                cur[idx] = parent[idx, ci]
                idx = idx[cur[idx] >= 0]
            self.stats.simulations += B
        ch = children[:, 0]
        rv = torch.where(ch >= 0, visits[rows[:, None], ch.clamp_min(0)], 0)
        root0 = wsum[:, 0] / visits[:, 0].float()
        root_value = torch.where(rplayer == 1, -root0, root0)
        return SearchResult(rv.int().cpu().numpy(), root_value.cpu().numpy(), p.cpu().numpy())
