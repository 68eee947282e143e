"""The connect_four twins: bitboards where the board fits 64 bits, board arrays otherwise."""

from __future__ import annotations

import torch

from ..errors import UserError
from .kinarow import BoardGame, FillingGame
from .twin import State


class ConnectFourBits(FillingGame):
    """connect_four as bitboards (the fast twin, for boards where (rows + 1) * columns <= 63):
    each player's stones in one int64, bit column * (rows + 1) + row (a spare bit above each
    column keeps shifted lines from wrapping into the next column). A move is one add and one
    mask; a line of k is k - 1 shifts and ANDs per direction. Same rules, actions and
    observations as `ConnectFourTensor` (and OpenSpiel): state p0, p1 int64 [n], player int8,
    outcome int8 (-1 running, 0/1 winner, 2 draw), moves int16."""

    compile_simd = True             # its expansion graph vectorises (measured: 13% faster with SIMD)

    def __init__(self, game: str = "connect_four", device="cpu"):
        from .spiel import load_spiel_game
        p = load_spiel_game(game).get_parameters()
        if p.get("egocentric_obs_tensor", False):
            raise UserError("the connect_four tensor twin does not implement egocentric_obs_tensor")
        self.rows, self.cols, self.k = int(p["rows"]), int(p["columns"]), int(p["x_in_row"])
        self._setup(game, self.cols, device)
        H = self.rows + 1
        if H * self.cols > 63:
            raise ValueError("board too large for 64-bit boards")
        d = self.device
        cols = torch.arange(self.cols, device=d)
        self.bottom = torch.bitwise_left_shift(torch.ones_like(cols), cols * H)                  # [C]
        self.top = torch.bitwise_left_shift(torch.ones_like(cols), cols * H + self.rows - 1)    # [C]
        self.column = (torch.bitwise_left_shift(torch.ones_like(cols), self.rows) - 1) * self.bottom
        r = torch.arange(self.rows, device=d)
        # observation order: row-major from the bottom row, as OpenSpiel's planes
        self.cell_bit = (cols[None, :] * H + r[:, None]).flatten()                              # [R*C]
        self.shifts = (1, H, H - 1, H + 1)              # vertical, horizontal and the two diagonals

    def new_states(self, n: int) -> State:
        d = self.device
        return {"p0": torch.zeros(n, dtype=torch.int64, device=d), "p1": torch.zeros(n, dtype=torch.int64, device=d),
                "player": torch.zeros(n, dtype=torch.int8, device=d),
                "outcome": torch.full((n,), -1, dtype=torch.int8, device=d),
                "moves": torch.zeros(n, dtype=torch.int16, device=d)}

    def legal(self, s: State) -> torch.Tensor:
        return torch.bitwise_and((s["p0"] | s["p1"])[:, None], self.top[None, :]) == 0

    def _won(self, b: torch.Tensor) -> torch.Tensor:
        won = torch.zeros_like(b, dtype=torch.bool)
        for sh in self.shifts:
            if sh * (self.k - 1) >= 63:         # no line of k fits this direction on a 63-bit board
                continue
            m = b
            for i in range(1, self.k):
                m = m & torch.bitwise_right_shift(b, sh * i)
            won = won | (m != 0)
        return won

    def step(self, s: State, actions: torch.Tensor) -> State:
        col = actions.long()
        mask = s["p0"] | s["p1"]
        stone = (mask + self.bottom[col]) & self.column[col]          # the lowest empty cell of the column
        first = s["player"] == 0
        p0 = torch.where(first, s["p0"] | stone, s["p0"])
        p1 = torch.where(first, s["p1"], s["p1"] | stone)
        moves = s["moves"] + 1
        won = self._won(torch.where(first, p0, p1))
        full = moves >= self.rows * self.cols
        outcome = torch.where(won, s["player"], torch.where(full, 2, -1)).to(torch.int8)
        return {"p0": p0, "p1": p1, "player": (1 - s["player"]).to(torch.int8), "outcome": outcome, "moves": moves}

    def observation(self, s: State) -> torch.Tensor:
        x = torch.bitwise_and(torch.bitwise_right_shift(s["p0"][:, None], self.cell_bit[None, :]), 1)
        o = torch.bitwise_and(torch.bitwise_right_shift(s["p1"][:, None], self.cell_bit[None, :]), 1)
        return torch.cat([x, o, 1 - x - o], 1).float()


class ConnectFourTensor(BoardGame):
    """OpenSpiel connect_four: action = column; row 0 is the bottom; observation planes
    [x (player 0), o (player 1), empty]."""

    def __init__(self, game: str = "connect_four", device="cpu"):
        from .spiel import load_spiel_game
        p = load_spiel_game(game).get_parameters()
        if p.get("egocentric_obs_tensor", False):
            raise UserError("the connect_four tensor twin does not implement egocentric_obs_tensor")
        super().__init__(game, p["rows"], p["columns"], p["x_in_row"], p["columns"], device)

    def legal(self, s: State) -> torch.Tensor:
        return s["board"][:, self.rows - 1, :] == 0

    def step(self, s: State, actions: torch.Tensor) -> State:
        col = actions.long()
        heights = (s["board"] != 0).sum(1)                          # [n, C]
        row = heights.gather(1, col.view(-1, 1)).squeeze(1)
        return self._after_move(s, self._placed(s, row * self.cols + col))

    def observation(self, s: State) -> torch.Tensor:
        b = s["board"]
        return torch.stack([b == 1, b == 2, b == 0], 1).flatten(1).float()


def connect_four(game: str = "connect_four", device="cpu"):
    """The bitboard twin where the board fits 64 bits, else the board-array twin."""
    try:
        return ConnectFourBits(game, device)
    except ValueError:
        return ConnectFourTensor(game, device)
