"""The reference players (`players.PLAYERS` names them and makes them): uniform random,
pyspiel's MCTSBot, perfect play. Below both `players` (the light registry) and `arena` (which plays
them), so neither imports the other; no torch here.

A new reference player is a class here and one entry in `players.PLAYERS`.
"""

from __future__ import annotations

import numpy as np
import pyspiel


class RandomPlayer:
    def __init__(self, seed: int = 0, name: str = "random"):
        self.name = name
        self.rng = np.random.default_rng([seed, 4242])

    def act(self, idx: np.ndarray, states: list) -> np.ndarray:
        return np.array([self.rng.choice(s.legal_actions()) for s in states])


class SpielMCTSPlayer:
    """pyspiel's C++ MCTSBot with a random-rollout evaluator (OpenSpiel's defaults: uct_c = 2,
    one rollout per leaf, solver on)."""

    def __init__(self, game: pyspiel.Game, simulations: int, seed: int = 0, uct_c: float = 2.0,
                 rollouts: int = 1, solve: bool = True, name: str | None = None):
        self.name = name or f"mcts-{simulations}"
        seed = int(seed) % 2**31           # OpenSpiel's C++ seeds are 32-bit; smaller seeds are unchanged
        evaluator = pyspiel.RandomRolloutEvaluator(rollouts, seed)
        self.bot = pyspiel.MCTSBot(game, evaluator, uct_c, simulations, 1000, solve, seed, False)

    def act(self, idx: np.ndarray, states: list) -> np.ndarray:
        return np.array([self.bot.step(s) for s in states])


class PerfectPlayer:
    """Plays a game-theoretically optimal move, uniformly at random among the optimal ones."""

    def __init__(self, game: pyspiel.Game, seed: int = 0, name: str = "perfect"):
        from .oracles import MemoSolver
        self.name = name
        self.solver = MemoSolver(game)
        self.rng = np.random.default_rng([seed, 999])

    def act(self, idx: np.ndarray, states: list) -> np.ndarray:
        out = []
        for s in states:
            vals = self.solver.action_values(s)
            best = max(vals.values())
            out.append(self.rng.choice([a for a, v in vals.items() if v == best]))
        return np.array(out)
