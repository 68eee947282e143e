"""Tensor twins of OpenSpiel games: torch integer code over a batch axis, on CPU or CUDA.

Each twin implements the same rules, action ids, observation tensors, current player, terminal
flags and returns as OpenSpiel; differential tests (tests/test_tensor_engine.py) replay random
and search-driven games through both and compare every step. A state is a dict of tensors with a
leading batch axis, so states can be gathered and scattered by index (what the device-resident
search needs).

Twins so far: tic_tac_toe, connect_four (any rows, columns, x_in_row) and pentago. Oware and
checkers are not written yet; `make_engine(..., "tensor")` refuses them with one line.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import UserError
from .base import StepInfo

State = dict[str, torch.Tensor]


def _lines_won(stones: torch.Tensor, k: int) -> torch.Tensor:
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


class _BoardGame:
    """Shared machinery: board int8 [n, R, C] (0 empty, 1 = player 0, 2 = player 1), player to
    move int8 [n], outcome int8 [n] (-1 running, 0/1 winner, 2 draw), moves int16 [n]."""

    name = "tensor"

    def __init__(self, game: str, rows: int, cols: int, k: int, num_actions: int, device="cpu"):
        from .spiel import load_spiel_game
        self.game = game
        self.spiel_game = load_spiel_game(game)
        self.rows, self.cols, self.k = rows, cols, k
        self.num_actions = num_actions
        self.obs_shape = tuple(self.spiel_game.observation_tensor_shape())
        self.obs_size = int(np.prod(self.obs_shape))
        self.device = torch.device(device)

    # -- state plumbing --------------------------------------------------------------------------
    def new_states(self, n: int) -> State:
        d = self.device
        return {"board": torch.zeros(n, self.rows, self.cols, dtype=torch.int8, device=d),
                "player": torch.zeros(n, dtype=torch.int8, device=d),
                "outcome": torch.full((n,), -1, dtype=torch.int8, device=d),
                "moves": torch.zeros(n, dtype=torch.int16, device=d)}

    @staticmethod
    def take(states: State, idx: torch.Tensor) -> State:
        return {k: v[idx] for k, v in states.items()}

    @staticmethod
    def put(states: State, idx: torch.Tensor, values: State) -> None:
        for k in states:
            states[k][idx] = values[k]

    @staticmethod
    def size(states: State) -> int:
        return int(states["player"].shape[0])

    def reset(self, states: State, idx) -> None:
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)
        self.put(states, idx, self.new_states(len(idx)))

    def replay_many(self, histories: Sequence[Sequence[int]]) -> State:
        parts = [self.replay(h) for h in histories]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else self.new_states(0)

    def replay(self, actions: Sequence[int]) -> State:
        s = self.new_states(1)
        for a in actions:
            s = self.step(s, torch.tensor([int(a)], device=self.device))
        return s

    # -- rules -------------------------------------------------------------------------------------
    def terminal(self, s: State) -> torch.Tensor:
        return s["outcome"] >= 0

    def returns(self, s: State) -> torch.Tensor:
        o = s["outcome"]
        r0 = torch.where(o == 0, 1.0, torch.where(o == 1, -1.0, 0.0))
        return torch.stack([r0, -r0], 1)

    def current_player(self, s: State) -> torch.Tensor:
        return torch.where(self.terminal(s), torch.full_like(s["player"], -1), s["player"])

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
        won = _lines_won(mine, self.k)
        full = s["moves"] >= self.rows * self.cols
        s["outcome"] = torch.where(won, placed_by, torch.where(full, torch.full_like(placed_by, 2),
                                                               torch.full_like(placed_by, -1))).to(torch.int8)

    def info(self, s: State) -> StepInfo:
        term = self.terminal(s)
        legal = self.legal(s) & ~term[:, None]
        obs = self.observation(s) * (~term)[:, None]
        return StepInfo(obs.cpu().numpy(), legal.cpu().numpy(), self.current_player(s).long().cpu().numpy(),
                        term.cpu().numpy(), self.returns(s).cpu().numpy())

    def expand(self, states: State, actions) -> tuple[State, StepInfo]:
        kids = self.step(states, torch.as_tensor(np.asarray(actions), device=self.device))
        return kids, self.info(kids)

    def apply(self, states: State, actions) -> None:
        new = self.step(states, torch.as_tensor(np.asarray(actions), device=self.device))
        for k in states:
            states[k].copy_(new[k])


class ConnectFourTensor(_BoardGame):
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


class TicTacToeTensor(_BoardGame):
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


class PentagoTensor(_BoardGame):
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
        p0 = _lines_won(board == 1, 5)
        p1 = _lines_won(board == 2, 5)
        moves = s["moves"] + 1
        draw = (p0 & p1) | (~p0 & ~p1 & (moves >= 36))
        outcome = torch.where(draw, 2, torch.where(p0, 0, torch.where(p1, 1, -1))).to(torch.int8)
        return {"board": board, "player": 1 - s["player"], "moves": moves, "outcome": outcome}

    def observation(self, s: State) -> torch.Tensor:
        b = s["board"]
        mine = (s["player"] + 1).to(torch.int8).view(-1, 1, 1)      # egocentric, as OpenSpiel's
        return torch.stack([b == mine, (b != mine) & (b != 0), b == 0], 1).flatten(1).float()


TWINS = {"connect_four": ConnectFourTensor, "tic_tac_toe": TicTacToeTensor, "pentago": PentagoTensor}


def make_tensor_engine(game: str, device="cpu"):
    from ..config import base_name
    cls = TWINS.get(base_name(game))
    if cls is None:
        raise UserError(f"no tensor twin for '{base_name(game)}' yet (available: {', '.join(sorted(TWINS))}); "
                        f"use --engine spiel")
    return cls(game, device)
