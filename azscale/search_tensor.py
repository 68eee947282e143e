"""Device-resident batched MCTS for tensor engines.

The same algorithm and semantics as `search.BatchedMCTS` (PUCT, player-0 frame inside the tree,
unvisited children at Q = 0, exact terminal values, root Dirichlet noise, one network call per
simulation wave), but the tree and every node's game state are tensors on the engine's device,
and nothing loops over games or nodes in Python: each wave is a fixed sequence of batched
tensor operations (a loop over tree depth remains, bounded by the deepest path).
Root noise is drawn with numpy from the caller's generator, so a seed gives the same games as
the reference search's conventions; tests compare root visit distributions with `BatchedMCTS`.

Engine hooks (defaults in `engines.tensor._TensorGame`): `status(s)` (terminal, player, legal,
returns in one pass), `legal_bound(roots, legal)` (a proven bound K on legal actions anywhere
below the roots: each node then keeps K slots of legal action ids instead of num_actions-wide
rows, which the argmax visits in ascending id order, so ties break as over ids) and
`compact(roots)` (the smallest per-node state; a state that grows during the search widens the
node storage, `_widened`).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .search import SearchResult, SearchStats


def _widened(t: torch.Tensor, shape) -> torch.Tensor:
    """`t` [n, ...] zero-padded to [n, *shape] (a twin's state grew, e.g. oware's board list)."""
    out = torch.zeros((t.shape[0], *shape), dtype=t.dtype, device=t.device)
    out[(slice(None), *(slice(0, d) for d in t.shape[1:]))] = t
    return out


def _slots(legal: torch.Tensor, K: int) -> torch.Tensor:
    """The legal action ids of each row in ascending order, in K slots padded with -1."""
    n, A = legal.shape
    if n and int(legal.sum(1).max()) > K:
        raise RuntimeError(f"a position has more than the engine's bound of {K} legal actions")
    pos = torch.where(legal, legal.cumsum(1) - 1, K)                           # column K: discarded
    out = torch.full((n, K + 1), -1, dtype=torch.int32, device=legal.device)
    out.scatter_(1, pos, torch.arange(A, dtype=torch.int32, device=legal.device).expand(n, A))
    return out[:, :K].contiguous()


def _gather_slots(values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """values [n, A] read at each slot's action id (0 for empty slots)."""
    return torch.where(slots >= 0, values.gather(1, slots.long().clamp_min(0)), 0.0)


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
        roots = eng.compact(roots)                      # per-node state as small as it can be
        B, A, S = eng.size(roots), eng.num_actions, self.simulations
        N = S + 1
        rows = torch.arange(B, device=dev)
        _, rplayer, rlegal, _ = eng.status(roots)
        # each node keeps its legal actions in a list of K slots (ascending ids, -1 padded), so the
        # per-node work is K wide, not num_actions wide (checkers: 48 of 512 ids at most)
        K = eng.legal_bound(roots, rlegal)
        visits = torch.zeros(B, N, dtype=torch.int32, device=dev)
        wsum = torch.zeros(B, N, device=dev)
        # prior and valid rows are written when a node is created (a terminal node's prior never
        # is, and nothing reads it: selection never starts from a terminal node), hence empty
        prior = torch.empty(B, N, K, device=dev)
        children = torch.full((B, N, K), -1, dtype=torch.long, device=dev)
        packed = K < A                                  # else slot i is action i and `acts` is not kept
        acts = torch.full((B, N, K) if packed else (1, 1, K), -1, dtype=torch.int32, device=dev)
        valid = torch.empty(B, N, K, dtype=torch.bool, device=dev)
        player = torch.full((B, N), -1, dtype=torch.int8, device=dev)
        term = torch.zeros(B, N, dtype=torch.bool, device=dev)
        # empty, not zeros: a node's state is written when it is created, before anything reads it
        states = {k: torch.empty((B, N, *v.shape[1:]), dtype=v.dtype, device=dev) for k, v in roots.items()}
        for k in states:
            states[k][:, 0] = roots[k]
        num_nodes = torch.ones(B, dtype=torch.long, device=dev)

        p, v = self._eval(eng.observation(roots), rlegal)
        if noise and self.epsilon > 0:
            assert rng is not None
            d = rng.dirichlet(np.full(A, self.alpha), size=B).astype(np.float32)
            d = torch.from_numpy(d).to(dev) * rlegal
            d = d / d.sum(1, keepdim=True).clamp_min(1e-12)
            p = (1 - self.epsilon) * p + self.epsilon * d
        if packed:
            racts = _slots(rlegal, K)
            acts[:, 0], valid[:, 0], prior[:, 0] = racts, racts >= 0, _gather_slots(p, racts)
        else:
            valid[:, 0], prior[:, 0] = rlegal, p
        player[:, 0] = rplayer
        visits[:, 0] = 1
        wsum[:, 0] = torch.where(rplayer == 1, -v, v)
        c = self.c_puct
        # flat views: node (b, i) is element b * N + i, so gathers need one index, not two
        f_visits, f_wsum, f_player, f_term = visits.view(-1), wsum.view(-1), player.view(-1), term.view(-1)
        f_children, f_prior, f_valid = (t.view(B * N, K) for t in (children, prior, valid))
        f_acts = acts.view(-1, K)
        f_states = {k: t.view(B * N, *t.shape[2:]) for k, t in states.items()}
        base = rows * N
        for _ in range(S):
            node = torch.zeros(B, dtype=torch.long, device=dev)
            leaf_parent = torch.full((B,), -1, dtype=torch.long, device=dev)
            leaf_slot = torch.full((B,), -1, dtype=torch.long, device=dev)
            path = []                                                           # flat ids of inner nodes
            active = rows
            while active.numel():
                fn = base[active] + node[active]
                path.append(fn)
                ch = f_children[fn]                                             # [k, K]
                seen = ch >= 0
                fch = base[active, None] + ch.clamp_min(0)
                cv = torch.where(seen, f_visits[fch], 0).float()
                q0 = torch.where(cv > 0, torch.where(seen, f_wsum[fch], 0.0) / cv.clamp_min(1), 0.0)
                sign = torch.where(f_player[fn] == 1, -1.0, 1.0)[:, None]
                u = (c * f_visits[fn].float().sqrt())[:, None] * f_prior[fn] / (1.0 + cv)
                score = torch.where(f_valid[fn], sign * q0 + u, float("-inf"))
                a = score.argmax(1)                     # slots ascend by action id: same ties as over ids
                nxt = ch.gather(1, a[:, None]).squeeze(1)
                new = nxt < 0
                leaf_parent[active[new]] = node[active[new]]
                leaf_slot[active[new]] = a[new]
                go = active[~new]
                nxt = nxt[~new]
                node[go] = nxt
                active = go[~f_term[base[go] + nxt]]
            leaf_v0 = torch.zeros(B, device=dev)
            exp = (leaf_slot >= 0).nonzero().squeeze(1)
            old = (leaf_slot < 0).nonzero().squeeze(1)
            if old.numel():                                                     # terminal leaves: exact value
                fo = base[old] + node[old]
                leaf_v0[old] = f_wsum[fo] / f_visits[fo].clamp_min(1).float()
            if exp.numel():
                par = leaf_parent[exp]
                fpar = base[exp] + par
                slot = leaf_slot[exp]
                act = f_acts[fpar, slot].long() if packed else slot
                kids = eng.step({k: t.index_select(0, fpar) for k, t in f_states.items()}, act)
                nid = num_nodes[exp]
                num_nodes[exp] += 1
                fnid = base[exp] + nid
                f_children[fpar, slot] = nid
                kt, kp, kl, kr = eng.status(kids)
                f_player[fnid], f_term[fnid] = kp, kt
                if packed:
                    kacts = _slots(kl, K)
                    f_acts[fnid], f_valid[fnid] = kacts, kacts >= 0
                else:
                    f_valid[fnid] = kl
                for k, t in list(f_states.items()):                             # whole rows: index_copy_
                    if kids[k].shape[1:] != t.shape[1:]:                        # a twin widened a list
                        t = f_states[k] = _widened(t, kids[k].shape[1:])
                    t.index_copy_(0, fnid, kids[k])
                v0 = kr[:, 0].clone()
                live = (~kt).nonzero().squeeze(1)
                if live.numel():
                    sub = {k: t[live] for k, t in kids.items()}
                    pp, vv = self._eval(eng.observation(sub), kl[live])
                    f_prior[fnid[live]] = _gather_slots(pp, kacts[live]) if packed else pp
                    v0[live] = torch.where(kp[live] == 1, -vv, vv)
                leaf_v0[exp] = v0
                node[exp] = nid
            # back up along the recorded paths in one scatter: every node on a path once
            path.append(base + node)
            flat = torch.cat(path)
            f_visits.index_add_(0, flat, torch.ones_like(flat, dtype=f_visits.dtype))
            f_wsum.index_add_(0, flat, leaf_v0[flat // N])
            self.stats.simulations += B
        ch = children[:, 0]
        slot_visits = torch.where(ch >= 0, visits[rows[:, None], ch.clamp_min(0)], 0)
        if packed:
            rv = torch.zeros(B, A + 1, dtype=slot_visits.dtype, device=dev)       # column A: empty slots
            rv.scatter_(1, torch.where(racts >= 0, racts, A).long(), slot_visits)
        else:
            rv = slot_visits
        root0 = wsum[:, 0] / visits[:, 0].float()
        root_value = torch.where(rplayer == 1, -root0, root0)
        return SearchResult(rv[:, :A].int().cpu().numpy(), root_value.cpu().numpy(), p.cpu().numpy())
