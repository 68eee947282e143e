"""The reference engine: any two-player, zero-sum, perfect-information, sequential,
deterministic OpenSpiel game, driven through pyspiel."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Sequence

import numpy as np
import pyspiel
import torch

from ..errors import UserError
from .base import StepInfo


@contextlib.contextmanager
def _quiet_stderr():
    """OpenSpiel's C++ side prints its exceptions to stderr itself; keep them off the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_spiel_game(game: str) -> pyspiel.Game:
    """Load `game` (with parameters, e.g. `connect_four(rows=4,columns=5)`) or explain why not."""
    name = game.split("(", 1)[0].strip()
    if name not in pyspiel.registered_names():
        raise UserError(f"unknown OpenSpiel game '{name}'")
    try:
        with _quiet_stderr():
            loaded = pyspiel.load_game(game)
    except pyspiel.SpielError as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        if "Unknown game" in str(exc):
            raise UserError(f"unknown OpenSpiel game '{game}'") from None
        raise UserError(f"cannot load OpenSpiel game '{game}': {msg}") from None
    t = loaded.get_type()
    problems = []
    if t.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
        problems.append("it has simultaneous moves")
    if t.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC:
        problems.append("it has chance nodes")
    if t.information != pyspiel.GameType.Information.PERFECT_INFORMATION:
        problems.append("it has imperfect information")
    if loaded.num_players() != 2:
        problems.append(f"it has {loaded.num_players()} players, not 2")
    if t.utility != pyspiel.GameType.Utility.ZERO_SUM:
        problems.append(f"it is {t.utility.name.lower().replace('_', '-')}, not zero-sum")
    if not t.provides_observation_tensor:
        problems.append("it provides no observation tensor")
    if problems:
        raise UserError(f"game '{game}' is not supported: " + "; ".join(problems)
                        + " (azscale needs two-player, zero-sum, perfect-information, "
                          "sequential, deterministic games)")
    return loaded


class SpielEngine:
    """A batch of pyspiel states. `states` is a list (or object array) of `pyspiel.State`."""

    name = "spiel"
    device = torch.device("cpu")           # pyspiel states live on the host; searches run on the CPU

    def __init__(self, game: str):
        self.game = game
        self.spiel_game = load_spiel_game(game)
        self.num_actions = self.spiel_game.num_distinct_actions()
        self.obs_shape = tuple(self.spiel_game.observation_tensor_shape())
        self.obs_size = int(np.prod(self.obs_shape))
        self.max_game_length = self.spiel_game.max_game_length()

    def node_store(self):
        """The search keeps pyspiel states host-side and expands them through this hook."""
        from ..search.nodes import SpielNodes
        return SpielNodes(self)

    def new_states(self, n: int) -> list:
        return [self.spiel_game.new_initial_state() for _ in range(n)]

    def reset(self, states: list, idx: Sequence[int]) -> None:
        for i in idx:
            states[i] = self.spiel_game.new_initial_state()

    def replay_many(self, histories: Sequence[Sequence[int]]) -> list:
        return [self.replay(h) for h in histories]

    def replay(self, actions: Sequence[int]) -> pyspiel.State:
        state = self.spiel_game.new_initial_state()
        for a in actions:
            state.apply_action(int(a))
        return state

    def info(self, states: Sequence[pyspiel.State]) -> StepInfo:
        n = len(states)
        obs = np.zeros((n, self.obs_size), np.float32)
        legal = np.zeros((n, self.num_actions), bool)
        player = np.full(n, -1, np.int64)
        terminal = np.zeros(n, bool)
        returns = np.zeros((n, 2), np.float32)
        for i, s in enumerate(states):
            if s.is_terminal():
                terminal[i] = True
                returns[i] = s.returns()
            else:
                obs[i] = s.observation_tensor()
                legal[i] = s.legal_actions_mask()
                player[i] = s.current_player()
        return StepInfo(obs, legal, player, terminal, returns)

    def expand(self, states: Sequence[pyspiel.State], actions: np.ndarray):
        children = []
        for s, a in zip(states, actions):
            c = s.clone()
            c.apply_action(int(a))
            children.append(c)
        return children, self.info(children)

    def apply(self, states: Sequence[pyspiel.State], actions: np.ndarray) -> None:
        for s, a in zip(states, actions):
            s.apply_action(int(a))

    # the batch interface the actors and arena use (the tensor twins have the same)
    def batch_info(self, states: Sequence[pyspiel.State]):
        i = self.info(states)
        return (torch.from_numpy(i.obs), torch.from_numpy(i.legal), torch.from_numpy(i.player),
                torch.from_numpy(i.terminal), torch.from_numpy(i.returns))

    def advance(self, states: list, actions: torch.Tensor) -> list:
        self.apply(states, actions.cpu().numpy())
        return states

    def reset_done(self, states: list, done: torch.Tensor) -> list:
        self.reset(states, np.flatnonzero(done.cpu().numpy()))
        return states

    @staticmethod
    def size(states) -> int:
        return len(states)
