"""Tensor twins of OpenSpiel games: the contract every twin implements (`TensorGame`).

Each twin implements the same rules, action ids, observation tensors, current player, terminal
flags and returns as OpenSpiel; differential tests (tests/test_tensor_engine.py) replay random
and search-driven games through both and compare every step. The twins live one per module
(`tic_tac_toe.py`, `connect_four.py`, `pentago.py`, `oware.py`, `checkers.py`) and are registered
in `engines/__init__.py` (`TWINS`): a new twin is one module and one line there.
"""

from __future__ import annotations

import abc
from typing import Sequence

import numpy as np
import torch

from .base import StepInfo

State = dict[str, torch.Tensor]


class TensorGame(abc.ABC):
    """The contract of a tensor twin, and the plumbing every twin shares. A state is a dict of
    tensors with a leading batch axis, gathered (`take`) and scattered (`put`) by index. A twin
    implements the abstract methods below (OpenSpiel's rules, action ids and observations,
    fixed-shape tensor code with no host reads, so they run inside the search's compiled
    graphs) and may override the search hooks (`legal_bound`, `node_state`, `tree_context`,
    `tree_step` with `lookback_fields`, `obs_dtype`, `compile_simd`, `action_group`)."""

    @abc.abstractmethod
    def new_states(self, n: int) -> State:
        """n games at their first position."""

    @abc.abstractmethod
    def step(self, s: State, actions: torch.Tensor) -> State:
        """The states after one action each (functional: `s` is not changed)."""

    @abc.abstractmethod
    def legal(self, s: State) -> torch.Tensor:
        """bool [n, num_actions]: OpenSpiel's legal-action mask (ignoring whether the game is over)."""

    @abc.abstractmethod
    def terminal(self, s: State) -> torch.Tensor:
        """bool [n]."""

    @abc.abstractmethod
    def returns(self, s: State) -> torch.Tensor:
        """float [n, 2]: each player's return (zeros until terminal)."""

    @abc.abstractmethod
    def observation(self, s: State) -> torch.Tensor:
        """float [n, obs_size]: OpenSpiel's observation tensor (player 0's, flattened)."""

    name = "tensor"

    def _setup(self, game: str, num_actions: int, device) -> None:
        from .spiel import load_spiel_game
        self.game = game
        self.spiel_game = load_spiel_game(game)
        self.num_actions = num_actions
        self.obs_shape = tuple(self.spiel_game.observation_tensor_shape())
        self.obs_size = int(np.prod(self.obs_shape))
        self.device = torch.device(device)

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
        """The states after each history, all games stepped together one move index at a time
        (a game whose history has ended takes its first legal move, and the result is
        discarded): as `replay` of each history, in max-length batched steps instead of one
        batch-1 step per move (a resumed run replays its 1,024 games in flight this way)."""
        s = self.new_states(len(histories))
        L = max((len(h) for h in histories), default=0)
        if L == 0:
            return s
        host = np.full((len(histories), L), -1, dtype=np.int64)
        for i, h in enumerate(histories):
            host[i, :len(h)] = [int(a) for a in h]
        acts = torch.as_tensor(host, device=self.device)          # explicit device: nothing lands elsewhere
        for t in range(L):
            on = acts[:, t] >= 0
            nxt = self.step(s, torch.where(on, acts[:, t], self.legal(s).to(torch.int8).argmax(1)))
            s = {k: torch.where(on.view(-1, *([1] * (v.dim() - 1))), nxt[k], v) for k, v in s.items()}
        return s

    def replay(self, actions: Sequence[int]) -> State:
        s = self.new_states(1)
        for a in actions:
            s = self.step(s, torch.tensor([int(a)], device=self.device))
        return s

    def current_player(self, s: State) -> torch.Tensor:
        return torch.where(self.terminal(s), torch.full_like(s["player"], -1), s["player"])

    # hooks for the tree search (`search.mcts`); twins override where they need to
    lookback_fields: tuple[str, ...] = ()       # node fields `tree_step` reads along the path
    obs_dtype = torch.float32                   # bool where observations are 0/1 planes
    compile_simd = False                        # compile the expansion with SIMD on CPU (see search.mcts)
    action_group = 1                            # aligned runs of action ids legal together (search.policy.slots)

    def node_store(self):
        from ..search.nodes import TwinNodes
        return TwinNodes(self)

    def node_spec(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """Shape (without the batch axis) and dtype of each field a tree node stores."""
        one = self.node_state(self.new_states(1))
        return {k: (tuple(v.shape[1:]), v.dtype) for k, v in one.items()}

    def node_state(self, s: State) -> State:
        """The part of a state a tree node keeps (all of it, unless a twin says otherwise)."""
        return s

    def tree_context(self, roots: State) -> dict[str, torch.Tensor]:
        """Per-game data a `tree_step` needs besides the path (none by default)."""
        return {}

    def legal_bound(self, roots: State, legal: torch.Tensor) -> int:
        """A bound on the legal actions of any position below `roots` (none better: all ids)."""
        return self.num_actions

    def reset_where(self, states: State, done: torch.Tensor) -> State:
        """Fresh games in the rows where `done` (fixed shape: every row is computed)."""
        fresh = self.new_states(done.shape[0])
        return {k: torch.where(done.view(-1, *([1] * (v.dim() - 1))), fresh[k], v) for k, v in states.items()}

    def status(self, s: State):
        """terminal, player to move (-1 once terminal), legal (none once terminal), returns."""
        term = self.terminal(s)
        return term, self.current_player(s), self.legal(s) & ~term[:, None], self.returns(s)

    # the batch interface the actors and arena use (the pyspiel engine has the same)
    def batch_info(self, s: State):
        """(obs zeroed once terminal, legal, player, terminal, returns) as tensors on the device."""
        term, player, legal, returns = self.status(s)
        return self.observation(s) * (~term)[:, None], legal, player, term, returns

    def advance(self, s: State, actions: torch.Tensor) -> State:
        return self.step(s, actions.to(self.device))

    def reset_done(self, s: State, done: torch.Tensor) -> State:
        return self.reset_where(s, done)

    def info(self, s: State) -> StepInfo:
        term, player, legal, returns = self.status(s)
        obs = self.observation(s) * (~term)[:, None]
        return StepInfo(obs.cpu().numpy(), legal.cpu().numpy(), player.long().cpu().numpy(),
                        term.cpu().numpy(), returns.cpu().numpy())

    def expand(self, states: State, actions) -> tuple[State, StepInfo]:
        kids = self.step(states, torch.as_tensor(np.asarray(actions), device=self.device))
        return kids, self.info(kids)

    def apply(self, states: State, actions) -> None:
        new = self.step(states, torch.as_tensor(np.asarray(actions), device=self.device))
        for k in states:
            states[k].copy_(new[k])
