"""The tic_tac_toe twin."""

from __future__ import annotations

import torch

from .kinarow import BoardGame
from .twin import State


class TicTacToeTensor(BoardGame):
    """OpenSpiel tic_tac_toe: action = row * 3 + column from the top left; observation planes
    [empty, o (player 1), x (player 0)]."""

    def __init__(self, game: str = "tic_tac_toe", device="cpu"):
        super().__init__(game, 3, 3, 3, 9, device)

    def legal(self, s: State) -> torch.Tensor:
        return (s["board"] == 0).flatten(1)

    def step(self, s: State, actions: torch.Tensor) -> State:
        return self._after_move(s, self._placed(s, actions.long()))

    def observation(self, s: State) -> torch.Tensor:
        b = s["board"]
        return torch.stack([b == 0, b == 2, b == 1], 1).flatten(1).float()
