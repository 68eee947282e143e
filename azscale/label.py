"""A solved position (`Label`): below `oracles` and the solvers it calls (`owaresolve`), which
both make them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Label:
    value: float          # side-to-move frame: +1 win, 0 draw, -1 loss with perfect play
    best_mask: int        # bit a set when action a is optimal
    nodes: int            # search effort (positions visited / solver nodes)
    seconds: float
