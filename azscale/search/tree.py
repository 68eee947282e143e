"""The search tree: a batch of B trees, each with N node slots, as preallocated tensors.

In the style of DeepMind's mctx, the tree is a dataclass of arrays with a batch axis. It is
allocated once per (B, N, K, device) and reused for every move: `reset` clears what a new
search reads before writing, nothing else is reallocated. Node 0 of each tree is its root;
nodes are numbered in creation order, so node i < `num_nodes[b]` exists in tree b.

Values are stored in player 0's frame (the network's side-to-move values are converted at
creation), so turns need not alternate (checkers' multi-jumps) and each node's player picks
children by its own sign. Each node keeps its legal actions in K slots (ascending action ids,
`NO_ACTION` padded), K being a bound the engine proves for every position below the roots (a CPU
search may lay out a node's slots only once a descent passes it: see `legal`).

This module also names what both tree walks (`mcts.select`, the torch walk, and `native.select`,
the numba walk for CPU trees) share: the sentinels of the tree's arrays, each defined once here
(the numba kernels read them as module globals), and the loop state that passes between the
steps of a wave (`Selection`, `Children`, `Leaves`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

# Sentinels. Every "empty" value is negative, and every real entry (node index, flat node id,
# action id, slot count) is >= 0: `x.clamp_min(0)` is a safe gather index for a possibly-empty
# entry, whose result is then masked.
ROOT = 0            # node index of each tree's root (node 0; nodes are numbered in creation order)
NO_CHILD = -1       # `children`: the slot's child is not expanded
NO_ACTION = -1      # `acts`: an empty slot (the padding after a node's legal slots)
NO_NODE = -1        # `Selection.path`: no node at this level (the descent ended above)
NO_PLAYER = -1      # `player`: nobody is to move (a terminal node)
UNCOUNTED = -1      # `nslots`: the host walk has not counted the node's legal slots yet


class Selection(NamedTuple):
    """Where each game's descent of one wave ended (`select`; B games, D levels). Node indices
    (`node`, `parent`) are within each game's tree; `path` holds flat ids (b * N + i)."""
    path: torch.Tensor | None  # [D, B] long  flat ids of the nodes passed, root first, NO_NODE after the
                               #   descent ended (None where a step does not read it: see `mcts.MCTS._run`)
    node: torch.Tensor         # [B] long  the node where the descent ended: the leaf's parent where a
                               #   node is to be created, else the terminal node it hit
    parent: torch.Tensor       # [B] long  the new node's parent (meaningful where `expand`)
    slot: torch.Tensor         # [B] long  the new node's slot in its parent (meaningful where `expand`)
    expand: torch.Tensor       # [B] bool  a new node is to be created (else a terminal node was hit)


class Children(NamedTuple):
    """The new nodes of one wave as the engine made them, one row per game (rows that expand
    nothing hold anything: their node is written into an unused slot, which nothing links to)."""
    obs: torch.Tensor          # [B, ...] the network's input
    legal: torch.Tensor        # [B, A] bool  legal actions
    player: torch.Tensor       # [B] player to move (NO_PLAYER, or anything, where terminal)
    term: torch.Tensor         # [B] bool  terminal
    ret0: torch.Tensor         # [B] player 0's return where terminal


class Leaves(NamedTuple):
    """What a wave backs up: each game's leaf (flat id) and its value in player 0's frame."""
    node: torch.Tensor         # [B] long
    value: torch.Tensor        # [B] float


@dataclass
class Tree:
    visits: torch.Tensor     # [B, N] int32  visit count; the root counts its own evaluation
    wsum: torch.Tensor       # [B, N] float  sum of backed-up values, player 0's frame
    depth: torch.Tensor      # [B, N] int32  depth of the node (root 0)
    player: torch.Tensor     # [B, N] int8   player to move at the node (NO_PLAYER once terminal)
    term: torch.Tensor       # [B, N] bool   terminal node (its value is exact)
    children: torch.Tensor   # [B, N, K] int32  node index of each slot's child (NO_CHILD: not expanded)
    prior: torch.Tensor      # [B, N, K] float  network prior of each slot (0 for empty slots); a CPU
                             #   search (`MCTS.lazy_priors`) leaves raw logits in the rows of nodes no
                             #   descent passed: `normed` says which rows hold priors
    acts: torch.Tensor       # [B, N, K] int32  action id of each slot (NO_ACTION: empty slot); see `legal`
    legal: torch.Tensor      # [B, N, G] bool  where a CPU search keeps rows in action order (K equal to
                             #   an action count A >= `mcts.WIDE_ROWS_MIN`, see `MCTS._tree_for`), a node no
                             #   descent passed has no slots yet: its prior row holds the raw logits of
                             #   actions 0..A-1, its `acts` row is stale, and this holds its legal action
                             #   runs (G = A / action_group); the walk lays both out in slots (`acts`,
                             #   `prior`) the first time it passes the node. G = 0 otherwise.
    num_nodes: torch.Tensor  # [B] int32  nodes in use
    max_depth: torch.Tensor  # [B] int32  depth of the deepest node
    states: dict[str, torch.Tensor]   # engine node state, [B, N, ...] per field (tensor twins only)
    # what the host walk (`native.select`) keeps per node, in trees it walks (`allocate(walk=True)`),
    # else None (`native.select` then takes every row as holding priors and counts slots afresh)
    normed: torch.Tensor | None = None   # [B, N] bool  the row's `prior` holds priors, not raw logits
    nslots: torch.Tensor | None = None   # [B, N] int32  the node's legal slot count (they come first in
                                         #   the row, `policy.slots`), UNCOUNTED until a descent passes it

    @classmethod
    def allocate(cls, B: int, N: int, K: int, device, dtype=torch.float32,
                 state_spec: dict[str, tuple[tuple[int, ...], torch.dtype]] | None = None,
                 legal_cols: int = 0, walk: bool = False) -> "Tree":
        def z(*shape, dt):
            return torch.zeros(shape, dtype=dt, device=device)
        states = {k: z(B, N, *shape, dt=dt) for k, (shape, dt) in (state_spec or {}).items()}
        return cls(visits=z(B, N, dt=torch.int32), wsum=z(B, N, dt=dtype), depth=z(B, N, dt=torch.int32),
                   player=z(B, N, dt=torch.int8), term=z(B, N, dt=torch.bool),
                   children=z(B, N, K, dt=torch.int32), prior=z(B, N, K, dt=dtype), acts=z(B, N, K, dt=torch.int32),
                   legal=z(B, N, legal_cols, dt=torch.bool),
                   num_nodes=z(B, dt=torch.int32), max_depth=z(B, dt=torch.int32), states=states,
                   normed=torch.ones((B, N), dtype=torch.bool, device=device) if walk else None,
                   nslots=torch.full((B, N), UNCOUNTED, dtype=torch.int32, device=device) if walk else None)

    @property
    def shape(self) -> tuple[int, int, int]:
        B, N, K = self.children.shape
        return B, N, K

    def reset(self, raw_priors: bool = False) -> None:
        """Forget the previous search. Only what is read before it is written needs clearing:
        visit counts and value sums (backed up into), child links (read to find leaves), the
        counters and the host walk's per-node state; every other field of a node is written
        when the node is created. `raw_priors`: new nodes will hold raw logits until the host
        walk first passes them (`normed`); the roots' priors are the search's to set."""
        self.visits.zero_()
        self.wsum.zero_()
        self.children.fill_(NO_CHILD)
        self.num_nodes.fill_(ROOT + 1)
        self.max_depth.zero_()
        if self.normed is not None:
            self.normed.fill_(not raw_priors)
            self.normed[:, ROOT] = True
            self.nslots.fill_(UNCOUNTED)

    def flat(self) -> "Tree":
        """The same storage with the batch and node axes merged: node (b, i) is row b * N + i,
        so a gather needs one index, not two."""
        B, N, K = self.shape
        out = {}
        for f in fields(self):
            t = getattr(self, f.name)
            if t is None:
                out[f.name] = None
            elif f.name == "states":
                out[f.name] = {k: v.view(B * N, *v.shape[2:]) for k, v in t.items()}
            elif t.dim() >= 2:
                out[f.name] = t.view(B * N, *t.shape[2:])
            else:
                out[f.name] = t
        return Tree(**out)
