"""The search tree: a batch of B trees, each with N node slots, as preallocated tensors.

In the style of DeepMind's mctx, the tree is a dataclass of arrays with a batch axis. It is
allocated once per (B, N, K, device) and reused for every move: `reset` clears what a new
search reads before writing, nothing else is reallocated. Node 0 of each tree is its root;
nodes are numbered in creation order, so node i < `num_nodes[b]` exists in tree b.

Values are stored in player 0's frame (the network's side-to-move values are converted at
creation), so turns need not alternate (checkers' multi-jumps) and each node's player picks
children by its own sign. Each node keeps its legal actions in K slots (ascending action ids,
-1 padded), K being a bound the engine proves for every position below the roots (a CPU search
may lay out a node's slots only once a descent passes it: see `legal`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Tree:
    visits: torch.Tensor     # [B, N] int32  visit count; the root counts its own evaluation
    wsum: torch.Tensor       # [B, N] float  sum of backed-up values, player 0's frame
    depth: torch.Tensor      # [B, N] int32  depth of the node (root 0)
    player: torch.Tensor     # [B, N] int8   player to move at the node (-1 once terminal)
    term: torch.Tensor       # [B, N] bool   terminal node (its value is exact)
    children: torch.Tensor   # [B, N, K] int32  node index of each slot's child (-1: not expanded)
    prior: torch.Tensor      # [B, N, K] float  network prior of each slot (0 for empty slots); a CPU
                             #   search (`MCTS.lazy_priors`) leaves raw logits in the rows of nodes no
                             #   descent passed: `MCTS._normed` says which rows hold priors
    acts: torch.Tensor       # [B, N, K] int32  action id of each slot (-1: empty slot); see `legal`
    legal: torch.Tensor      # [B, N, G] bool  where a CPU search keeps rows in action order (K equal to
                             #   an action count A >= `mcts.WIDE_ROWS_MIN`, see `MCTS._tree_for`), a node no
                             #   descent passed has no slots yet: its prior row holds the raw logits of
                             #   actions 0..A-1, its `acts` row is stale, and this holds its legal action
                             #   runs (G = A / action_group); the walk lays both out in slots (`acts`,
                             #   `prior`) the first time it passes the node. G = 0 otherwise.
    num_nodes: torch.Tensor  # [B] int32  nodes in use
    max_depth: torch.Tensor  # [B] int32  depth of the deepest node
    states: dict[str, torch.Tensor]   # engine node state, [B, N, ...] per field (tensor twins only)

    @classmethod
    def allocate(cls, B: int, N: int, K: int, device, dtype=torch.float32,
                 state_spec: dict[str, tuple[tuple[int, ...], torch.dtype]] | None = None,
                 legal_cols: int = 0) -> "Tree":
        def z(*shape, dt):
            return torch.zeros(shape, dtype=dt, device=device)
        states = {k: z(B, N, *shape, dt=dt) for k, (shape, dt) in (state_spec or {}).items()}
        return cls(visits=z(B, N, dt=torch.int32), wsum=z(B, N, dt=dtype), depth=z(B, N, dt=torch.int32),
                   player=z(B, N, dt=torch.int8), term=z(B, N, dt=torch.bool),
                   children=z(B, N, K, dt=torch.int32), prior=z(B, N, K, dt=dtype), acts=z(B, N, K, dt=torch.int32),
                   legal=z(B, N, legal_cols, dt=torch.bool),
                   num_nodes=z(B, dt=torch.int32), max_depth=z(B, dt=torch.int32), states=states)

    @property
    def shape(self) -> tuple[int, int, int]:
        B, N, K = self.children.shape
        return B, N, K

    def reset(self) -> None:
        """Forget the previous search. Only what is read before it is written needs clearing:
        visit counts and value sums (backed up into), child links (read to find leaves) and the
        counters; every other field of a node is written when the node is created."""
        self.visits.zero_()
        self.wsum.zero_()
        self.children.fill_(-1)
        self.num_nodes.fill_(1)
        self.max_depth.zero_()

    def flat(self) -> "Tree":
        """The same storage with the batch and node axes merged: node (b, i) is row b * N + i,
        so a gather needs one index, not two."""
        B, N, K = self.shape
        out = {}
        for f in fields(self):
            t = getattr(self, f.name)
            if f.name == "states":
                out[f.name] = {k: v.view(B * N, *v.shape[2:]) for k, v in t.items()}
            elif t.dim() >= 2:
                out[f.name] = t.view(B * N, *t.shape[2:])
            else:
                out[f.name] = t
        return Tree(**out)
