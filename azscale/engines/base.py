"""The engine interface: a batch of games advanced in lockstep.

States are opaque to callers; an engine hands out and takes back its own state objects (a list
of pyspiel states here, tensors in a tensor engine). `expand` is functional (the parents are
left untouched), which is what the tree search needs; `apply` advances games in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch


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
    """Everything the search (search/mcts.py, search/nodes.py), the actors (selfplay.py), the
    learner (train.py), the bench and the analysis's replays use of an engine, in one place;
    `tests/test_engine_nets.py` holds the pyspiel engine and every tensor twin to it. No caller
    reads an engine feature through `getattr` with a default: each engine declares them all.

    Shapes: n games; A = num_actions; states are the engine's own objects (a list of pyspiel
    states, or a dict of tensors with a leading batch axis)."""

    # what it plays
    name: str                          # "spiel" or "tensor"
    game: str                          # the game string, parameters included
    num_actions: int                   # A
    obs_shape: tuple[int, ...]         # OpenSpiel's observation tensor shape
    obs_size: int                      # prod(obs_shape)
    device: "torch.device"             # where its states and observations live
    obs_dtype: "torch.dtype"           # how a replay buffer keeps observations exactly (bool for 0/1 planes)
    # search hooks
    action_group: int                  # aligned runs of action ids legal together (search.policy.slots); 1: none
    compile_simd: bool                 # compile the tree expansion with SIMD on CPU (search.mcts)
    lookback_fields: tuple[str, ...]   # node fields `tree_step` reads along the search path; () for none

    # batches of games, host side (numpy), for tests, tournaments and the analysis's replays
    def new_states(self, n: int) -> Any: ...
    def info(self, states: Any) -> StepInfo: ...
    def expand(self, states: Any, actions: np.ndarray) -> tuple[Any, StepInfo]: ...
    def apply(self, states: Any, actions: np.ndarray) -> None: ...
    def replay(self, actions: Sequence[int]) -> Any: ...
    def replay_many(self, histories: Sequence[Sequence[int]]) -> Any: ...
    def reset(self, states: Any, idx: Any) -> None: ...

    # the actors' and the search's path (tensors on `device`, no host reads for tensor twins)
    def node_store(self) -> Any: ...
    def batch_info(self, states: Any) -> tuple[Any, Any, Any, Any, Any]:
        """(obs [n, obs_size] float, legal [n, A] bool, player [n], terminal [n] bool, returns [n, 2])."""
    def advance(self, states: Any, actions: "torch.Tensor") -> Any: ...
    def reset_done(self, states: Any, done: "torch.Tensor") -> Any: ...
    @staticmethod
    def size(states: Any) -> int: ...


# The members of the contract, for the test that holds every engine to it.
ENGINE_ATTRIBUTES = ("name", "game", "num_actions", "obs_shape", "obs_size", "device", "obs_dtype",
                     "action_group", "compile_simd", "lookback_fields")
ENGINE_METHODS = ("new_states", "info", "expand", "apply", "replay", "replay_many", "reset", "node_store",
                  "batch_info", "advance", "reset_done", "size")
