"""The checkers twin."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .twin import State, TensorGame


class CheckersTensor(TensorGame):
    """OpenSpiel checkers: action = ((row * columns + column) * 4 + direction) * 2 + kind, with
    directions (row, column) steps (-1,-1), (-1,+1), (+1,+1), (+1,-1) and kind 0 = step, 1 = jump.
    Player 0 (white, "o") starts on the bottom rows and moves up (directions 0, 1), player 1
    (black, "+") moves down (2, 3); kings move all four ways. Jumps are compulsory; a jump that can
    go on keeps the same player to move with only that piece's jumps legal, unless the piece was
    just crowned (which ends the turn); a man reaching the far row is crowned. The player to move
    with no legal action loses; after 40 actions without a capture no action is legal and the
    game is a draw (as is a start position with no legal move, on boards too small to play).
    Observation planes [white men, white kings, black men, black kings, empty]
    (the default, non-egocentric observation). Square boards of any size (OpenSpiel stores the
    piece that must jump again as row * rows + column, which only works when rows == columns;
    on those boards it is the cell index, which is what the twin keeps in "jump").
    """

    MAX_QUIET = 40          # OpenSpiel's kMaxMovesWithoutCapture
    obs_dtype = torch.bool  # observations are 0/1 planes
    DR = (-1, -1, 1, 1)
    DC = (-1, 1, 1, -1)

    def __init__(self, game: str = "checkers", device="cpu"):
        from .spiel import load_spiel_game
        p = load_spiel_game(game).get_parameters()
        if p.get("egocentric", False):
            raise UserError("the checkers tensor twin does not implement egocentric observations")
        self.rows, self.cols = int(p["rows"]), int(p["columns"])
        if self.rows != self.cols:
            raise UserError("checkers with rows != columns: OpenSpiel stores the piece that must jump "
                            "again as row * rows + column, which breaks on such boards; the twin refuses them")
        self._setup(game, self.rows * self.cols * 8, device)
        R, C = self.rows, self.cols
        start = np.zeros((R, C), dtype=np.int8)
        for r in range(R):
            for c in range(C):
                if (r + c) % 2 == 1:
                    if r < 3:
                        start[r, c] = 3
                    elif r >= R - 3:
                        start[r, c] = 1
        self.start = torch.as_tensor(start, device=self.device)
        # a man may step or jump in these directions: player 0 up (0, 1), player 1 down (2, 3)
        self.man_dirs = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool, device=self.device)
        self.dr, self.dc = (torch.tensor(x, device=self.device) for x in (self.DR, self.DC))

    def new_states(self, n: int) -> State:
        d = self.device
        return {"board": self.start.expand(n, -1, -1).clone(),
                "player": torch.zeros(n, dtype=torch.int8, device=d),
                "quiet": torch.zeros(n, dtype=torch.int16, device=d),
                "jump": torch.full((n,), -1, dtype=torch.int16, device=d),
                "moves": torch.zeros(n, dtype=torch.int16, device=d)}

    def _moves(self, board: torch.Tensor, player: torch.Tensor):
        """Steps and jumps, bool [n, R, C, 4] each, for the player to move (no rules of turn)."""
        R, C = self.rows, self.cols
        pl = player.long().view(-1, 1, 1)
        man, king = board == (1 + 2 * pl), board == (2 + 2 * pl)
        theirs = (board != 0) & ~man & ~king
        pad = lambda x: torch.nn.functional.pad(x, (2, 2, 2, 2))                # noqa: E731 off board: False
        empty_p, theirs_p = pad(board == 0), pad(theirs)
        steps, jumps = [], []
        for d in range(4):
            dr, dc = self.DR[d], self.DC[d]
            may = king | (man & self.man_dirs[player.long(), d].view(-1, 1, 1))
            adj = (slice(None), slice(2 + dr, 2 + dr + R), slice(2 + dc, 2 + dc + C))
            far = (slice(None), slice(2 + 2 * dr, 2 + 2 * dr + R), slice(2 + 2 * dc, 2 + 2 * dc + C))
            steps.append(may & empty_p[adj])
            jumps.append(may & theirs_p[adj] & empty_p[far])
        return torch.stack(steps, 3), torch.stack(jumps, 3)

    def _jumps_from(self, board: torch.Tensor, player: torch.Tensor, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Whether the piece on cell (r, c) of each flat board [n, R*C] has a jump (the rule of
        `_moves`, for that one piece: a continued jump looks at the landing cell only)."""
        R, C = self.rows, self.cols
        at = lambda rr, cc: board.gather(1, (rr.clamp(0, R - 1) * C + cc.clamp(0, C - 1))[:, None]).squeeze(1)  # noqa: E731
        pl = player.long()
        piece = at(r, c)
        man, king = piece == 1 + 2 * pl, piece == 2 + 2 * pl
        out = torch.zeros_like(man)
        for d in range(4):
            dr, dc = self.DR[d], self.DC[d]
            r2, c2 = r + 2 * dr, c + 2 * dc
            inside = (r2 >= 0) & (r2 < R) & (c2 >= 0) & (c2 < C)        # then (r + dr, c + dc) is too
            mid = at(r + dr, c + dc)
            theirs = (mid != 0) & (mid != 1 + 2 * pl) & (mid != 2 + 2 * pl)
            may = king | (man & self.man_dirs[pl, d])
            out = out | (may & inside & theirs & (at(r2, c2) == 0))
        return out

    def legal_bound(self, roots: State, legal: torch.Tensor) -> int:
        """At most one action per piece and direction, and pieces are never added: 4 x the most
        pieces either side has at the roots."""
        b = roots["board"].flatten(1)
        most = torch.maximum(((b == 1) | (b == 2)).sum(1), ((b == 3) | (b == 4)).sum(1))
        return max(1, 4 * int(most.max())) if b.shape[0] else 1

    def legal(self, s: State) -> torch.Tensor:
        steps, jumps = self._moves(s["board"], s["player"])
        n = steps.shape[0]
        any_jump = jumps.flatten(1).any(1)
        jump = s["jump"].long()
        forced = jump >= 0
        cell = jump[:, None] == torch.arange(self.rows * self.cols, device=self.device)[None, :]   # (-1: none)
        jumps = jumps & (~forced.view(-1, 1, 1, 1) | cell.view(n, self.rows, self.cols, 1))
        kinds = torch.stack([steps & ~any_jump.view(-1, 1, 1, 1), jumps], 4)   # [n, R, C, 4, 2]
        return kinds.flatten(1) & (s["quiet"] < self.MAX_QUIET)[:, None]

    def status(self, s: State):
        legal = self.legal(s)                                                 # computed once
        term = ~legal.any(1)
        # the player to move lost, unless no move was ever made (OpenSpiel sets no winner then)
        lost = term & (s["quiet"] < self.MAX_QUIET) & (s["moves"] > 0)
        r0 = torch.where(lost, torch.where(s["player"] == 0, -1.0, 1.0), 0.0)
        player = torch.where(term, torch.full_like(s["player"], -1), s["player"])
        return term, player, legal, torch.stack([r0, -r0], 1)

    def terminal(self, s: State) -> torch.Tensor:
        return self.status(s)[0]

    def returns(self, s: State) -> torch.Tensor:
        return self.status(s)[3]

    def current_player(self, s: State) -> torch.Tensor:
        return self.status(s)[1]

    def observation(self, s: State) -> torch.Tensor:
        b = s["board"]
        return torch.stack([b == 1, b == 2, b == 3, b == 4, b == 0], 1).flatten(1).float()

    def step(self, s: State, actions: torch.Tensor) -> State:
        R, C = self.rows, self.cols
        a = actions.long()
        kind, d = a % 2, (a // 2) % 4
        cell = a // 8
        r, c = cell // C, cell % C
        dr, dc = self.dr[d], self.dc[d]
        er, ec = r + dr * (kind + 1), c + dc * (kind + 1)
        board = s["board"].flatten(1).clone()
        n = board.shape[0]
        ar = torch.arange(n, device=self.device)
        piece = board[ar, cell]
        crowned = ((piece == 1) & (er == 0)) | ((piece == 3) & (er == R - 1))
        board[ar, cell] = 0
        board[ar, er * C + ec] = torch.where(crowned, piece + 1, piece)
        jumped = kind == 1
        mid = (r + dr) * C + (c + dc)                  # for a step: the destination, left as it is
        board[ar, mid] = torch.where(jumped, 0, board[ar, mid])
        board = board.view(n, R, C)
        quiet = torch.where(jumped, 0, s["quiet"] + 1)
        again = jumped & ~crowned & self._jumps_from(board.flatten(1), s["player"], er, ec)
        jump = torch.where(again, er * C + ec, -1)
        player = torch.where(again, s["player"], 1 - s["player"])
        return {"board": board, "player": player.to(torch.int8), "quiet": quiet.to(torch.int16),
                "jump": jump.to(torch.int16), "moves": s["moves"] + 1}
