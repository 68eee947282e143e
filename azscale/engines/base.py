"""The engine interface: a batch of games advanced in lockstep.

States are opaque to callers; an engine hands out and takes back its own state objects (a list
of pyspiel states here, tensors in a tensor engine). `expand` is functional (the parents are
left untouched), which is what the tree search needs; `apply` advances games in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass
class StepInfo:
    """What a search or a learner needs to know about a batch of states.

    obs: float32 [n, obs_size] (zeros for terminal states); legal: bool [n, num_actions];
    player: int [n] (player to move; -1 once terminal); terminal: bool [n];
    returns: float32 [n, 2] (each player's return; zeros until terminal).
    """

    obs: np.ndarray
    legal: np.ndarray
    player: np.ndarray
    terminal: np.ndarray
    returns: np.ndarray


class Engine(Protocol):
    name: str
    game: str
    num_actions: int
    obs_shape: tuple[int, ...]
    obs_size: int

    def new_states(self, n: int) -> Any: ...
    def info(self, states: Any) -> StepInfo: ...
    def expand(self, states: Any, actions: np.ndarray) -> tuple[Any, StepInfo]: ...
    def apply(self, states: Any, actions: np.ndarray) -> None: ...
    def replay(self, actions: Sequence[int]) -> Any: ...
