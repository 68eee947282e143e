"""The pentago twin."""

from __future__ import annotations

import numpy as np
import torch


from .kinarow import BoardGame, lines_won
from .twin import State


class PentagoTensor(BoardGame):
    """OpenSpiel pentago: action = cell * 8 + rotation, cell = row * 6 + column (row 0 = "1");
    the stone is placed, then one quadrant turns; five in a row is checked for both players after
    the turn (both: draw), and a full board is a draw. Observation planes [stones of the player
    to move, the opponent's stones, empty] (OpenSpiel's pentago observation is egocentric).

    The eight quadrant turns are read from OpenSpiel once, as permutations of the 36 cells
    (place a lone stone on each cell with each turn and see where it lands), so the twin cannot
    disagree with OpenSpiel about which letter turns which way; the differential tests check the
    rest of the rules (random play reaches both rare branches often: per 20,000 random games,
    ~800 turns make five for both players and ~3,400 turns undo the mover's placed five).
    """

    action_group = 8        # a cell's 8 turns are legal together (`legal`): the search packs cells

    def __init__(self, game: str = "pentago", device="cpu"):
        super().__init__(game, 6, 6, 5, 288, device)
        src = np.zeros((8, 36), dtype=np.int64)              # after turn r, cell j holds cell src[r, j]
        for r in range(8):
            for c in range(36):
                st = self.spiel_game.new_initial_state()
                st.apply_action(c * 8 + r)
                plane0 = np.asarray(st.observation_tensor(0), dtype=np.float32)[:36]
                src[r, int(np.flatnonzero(plane0)[0])] = c
        self.turn_src = torch.as_tensor(src, device=self.device)

    def legal(self, s: State) -> torch.Tensor:
        return (s["board"] == 0).flatten(1).repeat_interleave(8, dim=1)

    def step(self, s: State, actions: torch.Tensor) -> State:
        a = actions.long()
        board = self._placed(s, a // 8).gather(1, self.turn_src[a % 8]).view(-1, 6, 6)
        p0 = lines_won(board == 1, 5)
        p1 = lines_won(board == 2, 5)
        moves = s["moves"] + 1
        draw = (p0 & p1) | (~p0 & ~p1 & (moves >= 36))
        outcome = torch.where(draw, 2, torch.where(p0, 0, torch.where(p1, 1, -1))).to(torch.int8)
        return {"board": board, "player": 1 - s["player"], "moves": moves, "outcome": outcome}

    def observation(self, s: State) -> torch.Tensor:
        b = s["board"]
        mine = (s["player"] + 1).to(torch.int8).view(-1, 1, 1)      # egocentric, as OpenSpiel's
        return torch.stack([b == mine, (b != mine) & (b != 0), b == 0], 1).flatten(1).float()
