"""How the search keeps each node's game state: the engine side of a search.

`TwinNodes` (tensor twins): node states live in the tree as tensors ([B, N, ...] per field) and
children are made inside the search's graph by the twin's `step` (or `tree_step`, for rules that
look back along the line of play). `SpielNodes` (any OpenSpiel game): node states are pyspiel
objects in a host-side array, and `expand` is the leaf-expansion hook: a host loop over the
games that expand this wave, returning the children's observations, legal moves, players,
terminal flags and returns as tensors (`tree.Children`). Either way the tree, selection,
network call and backup are the same code (`mcts.py`).
"""

from __future__ import annotations

import numpy as np
import torch

from .tree import NO_PLAYER, Children


class TwinNodes:
    in_graph = True

    def __init__(self, engine):
        self.engine = engine

    def spec(self):
        return self.engine.node_spec()

    def root_info(self, roots):
        _, player, legal, _ = self.engine.status(roots)
        return self.engine.observation(roots), legal, player

    def legal_bound(self, roots, legal) -> int:
        return self.engine.legal_bound(roots, legal)

    def set_roots(self, tree, roots):
        ns = self.engine.node_state(roots)
        for k, t in tree.states.items():
            t[:, 0] = ns[k]
        return self.engine.tree_context(roots)


class SpielNodes:
    in_graph = False

    def __init__(self, engine):
        self.engine = engine
        self.objs = None

    def spec(self):
        return None

    def root_info(self, roots):
        info = self.engine.info(roots)
        return (torch.from_numpy(info.obs), torch.from_numpy(info.legal),
                torch.from_numpy(info.player).to(torch.int8))

    def legal_bound(self, roots, legal) -> int:
        return self.engine.num_actions          # no bound is known for an arbitrary game

    def set_roots(self, tree, roots):
        B, N, _ = tree.shape
        self.objs = np.empty(B * N, dtype=object)
        self.objs[::N] = list(roots)
        return None

    def expand(self, fpar: torch.Tensor, act: torch.Tensor, fchild: torch.Tensor, expand: torch.Tensor) -> Children:
        eng = self.engine
        B = fpar.shape[0]
        obs = np.zeros((B, eng.obs_size), np.float32)
        legal = np.zeros((B, eng.num_actions), bool)
        player = np.full(B, NO_PLAYER, np.int8)
        term = np.zeros(B, bool)
        ret0 = np.zeros(B, np.float32)
        fp, ac, fc = fpar.numpy(), act.numpy(), fchild.numpy()
        for b in np.flatnonzero(expand.numpy()):
            s = self.objs[fp[b]].clone()
            s.apply_action(int(ac[b]))
            self.objs[fc[b]] = s
            if s.is_terminal():
                term[b] = True
                ret0[b] = s.returns()[0]
            else:
                obs[b] = s.observation_tensor()
                legal[b] = s.legal_actions_mask()
                player[b] = s.current_player()
        return Children(torch.from_numpy(obs), torch.from_numpy(legal), torch.from_numpy(player),
                        torch.from_numpy(term), torch.from_numpy(ret0))
