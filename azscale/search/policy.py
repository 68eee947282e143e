"""The small pieces of the search, each written once: masked softmax, root noise, slot packing,
the PUCT score and move selection. All are fixed-shape tensor functions (no host reads), usable
inside compiled graphs, on any device."""

from __future__ import annotations

import torch

from .tree import NO_ACTION


def masked_softmax(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Softmax over the legal entries of each row (rows with no legal entry give zeros)."""
    x = logits.masked_fill(~legal, float("-inf"))
    m = x.amax(1, keepdim=True).clamp_min(-1e30)          # finite even for all-illegal rows
    e = torch.exp(x - m) * legal
    return e / e.sum(1, keepdim=True).clamp_min(1e-30)


def dirichlet(alpha: float, legal: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One Dirichlet(alpha) draw over the legal actions of each row. Gamma(alpha) variates,
    masked and normalised: by the aggregation property of the Dirichlet this is exactly
    Dirichlet(alpha, ..., alpha) over the legal subset (as OpenSpiel draws it)."""
    conc = torch.full(legal.shape, float(alpha), dtype=torch.float32, device=legal.device)
    g = torch._standard_gamma(conc, generator=generator) * legal
    return g / g.sum(1, keepdim=True).clamp_min(1e-30)


def with_noise(prior: torch.Tensor, legal: torch.Tensor, alpha: float, epsilon: float,
               generator: torch.Generator | None) -> torch.Tensor:
    """AlphaZero's root exploration: (1 - epsilon) * prior + epsilon * Dirichlet(alpha)."""
    return (1 - epsilon) * prior + epsilon * dirichlet(alpha, legal, generator).to(prior.dtype)


def slots(legal: torch.Tensor, K: int, group: int = 1) -> torch.Tensor:
    """The legal action ids of each row in ascending order, in K slots padded with NO_ACTION (the
    caller guarantees at most K legal actions per row). Ascending order keeps argmax ties
    broken by the lowest action id, as over plain action rows.

    `group` > 1: the actions come in aligned runs of `group` ids that are legal together
    (pentago: a cell and its 8 quadrant turns; the engine guarantees it), so the runs are packed
    instead of the actions, a pass over A / group columns instead of A; the same result."""
    n, A = legal.shape
    if group > 1:
        runs = slots(legal[:, ::group], -(-K // group))                      # [n, ceil(K / group)]
        step = torch.arange(group, dtype=runs.dtype, device=legal.device)
        acts = torch.where(runs[:, :, None] != NO_ACTION, runs[:, :, None] * group + step, NO_ACTION)
        return acts.flatten(1)[:, :K]
    pos = torch.where(legal, legal.cumsum(1) - 1, K).clamp_max(K)          # column K: discarded
    out = torch.full((n, K + 1), NO_ACTION, dtype=torch.int32, device=legal.device)
    out.scatter_(1, pos, torch.arange(A, dtype=torch.int32, device=legal.device).expand(n, A))
    return out[:, :K]


def gather_slots(values: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """values [n, A] read at each slot's action id (0 for empty slots)."""
    return torch.where(acts != NO_ACTION, values.gather(1, acts.long().clamp_min(0)), 0)


def scatter_slots(values: torch.Tensor, acts: torch.Tensor, num_actions: int) -> torch.Tensor:
    """Slot values [n, K] back to action rows [n, A] (empty slots dropped)."""
    n = values.shape[0]
    out = torch.zeros(n, num_actions + 1, dtype=values.dtype, device=values.device)
    out.scatter_(1, torch.where(acts != NO_ACTION, acts.long(), num_actions), values)
    return out[:, :num_actions]


def puct(q: torch.Tensor, n_child: torch.Tensor, prior: torch.Tensor, n_parent: torch.Tensor,
         sign: torch.Tensor, c: float) -> torch.Tensor:
    """PUCT score of each child from the parent's side: sign * Q + c * P * sqrt(N) / (1 + n),
    Q in player 0's frame (0 for unvisited children, as in OpenSpiel's AlphaZero), sign = +1
    where player 0 is to move, -1 where player 1 is."""
    return sign[:, None] * q + (c * n_parent.to(q.dtype).sqrt())[:, None] * prior / (1.0 + n_child.to(q.dtype))


def to_player0(value_stm: torch.Tensor, player: torch.Tensor) -> torch.Tensor:
    """Side-to-move value -> player 0's frame."""
    return torch.where(player == 1, -value_stm, value_stm)


def select_actions(visits: torch.Tensor, temperature: torch.Tensor | float,
                   generator: torch.Generator | None) -> torch.Tensor:
    """One action per row: sampled with probability proportional to visits^(1/T) where T > 0
    (Gumbel-max: argmax of log(visits)/T plus Gumbel noise is an exact draw), the most visited
    (lowest id on ties) where T = 0. Fixed shape; noise is drawn for every row."""
    v = visits.to(torch.float64)
    B = v.shape[0]
    temps = torch.as_tensor(temperature, dtype=torch.float64, device=v.device).expand(B)
    greedy = v.argmax(1)
    u = torch.rand(v.shape, dtype=torch.float64, device=v.device, generator=generator).clamp_min(1e-300)
    logits = torch.where(v > 0, v.clamp_min(1e-300).log() / temps.clamp_min(1e-300)[:, None], float("-inf"))
    sampled = (logits - (-u.log()).log()).argmax(1)
    return torch.where(temps > 0, sampled, greedy)
