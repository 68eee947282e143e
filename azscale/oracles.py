"""Exact game values for small games, by memoized minimax over pyspiel.

Values are in player 0's frame (+1 = player 0 wins with perfect play). The transposition key is
(str(state), player to move), which identifies a position completely in games whose rules do
not depend on history beyond the board (tic_tac_toe, connect_four and its small variants).
Games whose rules look back further (oware's and checkers' repetition and move-count rules) are
refused rather than solved wrongly.
"""

from __future__ import annotations

import sys

import pyspiel

from .errors import UserError

HISTORY_FREE = {"tic_tac_toe", "connect_four"}


class Solver:
    def __init__(self, game: pyspiel.Game):
        name = game.get_type().short_name
        if name not in HISTORY_FREE:
            raise UserError(f"no exact solver for '{name}' yet (supported: {', '.join(sorted(HISTORY_FREE))})")
        self.game = game
        self.table: dict[tuple[str, int], float] = {}
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def value(self, state: pyspiel.State) -> float:
        """The game-theoretic value of `state` for player 0."""
        if state.is_terminal():
            return float(state.returns()[0])
        key = (str(state), state.current_player())
        hit = self.table.get(key)
        if hit is not None:
            return hit
        sign = 1.0 if state.current_player() == 0 else -1.0
        best = -2.0
        for a in state.legal_actions():
            child = state.child(a)
            v = sign * self.value(child)
            if v > best:
                best = v
                if best >= 1.0:  # cannot do better than a win
                    break
        out = sign * best
        self.table[key] = out
        return out

    def action_values(self, state: pyspiel.State) -> dict[int, float]:
        """Value of each legal move for the player to move (their own frame)."""
        sign = 1.0 if state.current_player() == 0 else -1.0
        return {a: sign * self.value(state.child(a)) for a in state.legal_actions()}
