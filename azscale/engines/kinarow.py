"""k-in-a-row board games on int8 boards: the shared rules of tic_tac_toe, pentago and the
board-array connect_four twin."""

from __future__ import annotations

import torch

from .twin import State, TensorGame


def lines_won(stones: torch.Tensor, k: int) -> torch.Tensor:
    """stones: bool [n, R, C]; True where some k-in-a-row (any direction) is complete."""
    n, R, C = stones.shape
    won = torch.zeros(n, dtype=torch.bool, device=stones.device)
    if C >= k:
        h = stones[:, :, : C - k + 1].clone()
        for i in range(1, k):
            h &= stones[:, :, i: C - k + 1 + i]
        won |= h.flatten(1).any(1)
    if R >= k:
        v = stones[:, : R - k + 1, :].clone()
        for i in range(1, k):
            v &= stones[:, i: R - k + 1 + i, :]
        won |= v.flatten(1).any(1)
    if R >= k and C >= k:
        d = stones[:, : R - k + 1, : C - k + 1].clone()
        a = stones[:, : R - k + 1, k - 1:].clone()
        for i in range(1, k):
            d &= stones[:, i: R - k + 1 + i, i: C - k + 1 + i]
            a &= stones[:, i: R - k + 1 + i, k - 1 - i: C - i]
        won |= d.flatten(1).any(1) | a.flatten(1).any(1)
    return won


class FillingGame(TensorGame):
    """Games that only ever fill cells, with the result in an `outcome` field (int8: -1 running,
    0/1 winner, 2 draw): terminal flags, returns and the slot bound come from that alone."""

    obs_dtype = torch.bool          # observations are 0/1 planes: a replay buffer keeps them exactly as bool

    def legal_bound(self, roots: State, legal: torch.Tensor) -> int:
        """No position below these roots has more legal actions than the roots' most: stones
        only fill cells (a pentago turn moves stones, never empties a cell)."""
        return max(1, int(legal.sum(1).max())) if legal.shape[0] else 1

    def terminal(self, s: State) -> torch.Tensor:
        return s["outcome"] >= 0

    def returns(self, s: State) -> torch.Tensor:
        o = s["outcome"]
        r0 = torch.where(o == 0, 1.0, torch.where(o == 1, -1.0, 0.0))
        return torch.stack([r0, -r0], 1)


class BoardGame(FillingGame):
    """k-in-a-row games: board int8 [n, R, C] (0 empty, 1 = player 0, 2 = player 1), player to
    move int8 [n], outcome int8 [n] (-1 running, 0/1 winner, 2 draw), moves int16 [n]."""

    def __init__(self, game: str, rows: int, cols: int, k: int, num_actions: int, device="cpu"):
        self._setup(game, num_actions, device)
        self.rows, self.cols, self.k = rows, cols, k

    def new_states(self, n: int) -> State:
        d = self.device
        return {"board": torch.zeros(n, self.rows, self.cols, dtype=torch.int8, device=d),
                "player": torch.zeros(n, dtype=torch.int8, device=d),
                "outcome": torch.full((n,), -1, dtype=torch.int8, device=d),
                "moves": torch.zeros(n, dtype=torch.int16, device=d)}

    def _placed(self, s: State, cells: torch.Tensor) -> torch.Tensor:
        """A copy of the boards, flattened [n, R*C], with the mover's stone on each game's cell."""
        board = s["board"].flatten(1).clone()
        board[torch.arange(board.shape[0], device=board.device), cells] = (s["player"] + 1).to(torch.int8)
        return board

    def _after_move(self, s: State, board: torch.Tensor) -> State:
        """The next states under the k-in-a-row rules: the mover wins with a line, a full board draws."""
        out = {"board": board.view(-1, self.rows, self.cols), "player": 1 - s["player"],
               "moves": s["moves"] + 1, "outcome": s["outcome"]}
        self._finish(out, s["player"])
        return out

    def _finish(self, s: State, placed_by: torch.Tensor) -> None:
        mine = s["board"] == (placed_by + 1).view(-1, 1, 1).to(torch.int8)
        won = lines_won(mine, self.k)
        full = s["moves"] >= self.rows * self.cols
        s["outcome"] = torch.where(won, placed_by, torch.where(full, torch.full_like(placed_by, 2),
                                                               torch.full_like(placed_by, -1))).to(torch.int8)
