"""The reference engine: any two-player, zero-sum, perfect-information, sequential,
deterministic OpenSpiel game, driven through pyspiel."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
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


# Games may last at most this many moves (OpenSpiel's `max_game_length`); longer games (chess,
# shogi, chinese_checkers: 22,000) are refused: a self-play game must end in bounded time.
MAX_GAME_LENGTH = 1000
# Integer game parameters are sizes and counts: 1..PARAM_MAX (0..PARAM_MAX where the default is 0).
PARAM_MAX = 1000
PROBE_GAMES = 2


def _parameter_problems(game: str) -> tuple[str, list[str]]:
    """The game's name and what is wrong with its parameters, checked against the game's own
    parameter specification before OpenSpiel builds anything (connect_four(rows=0) crashes it)."""
    name = game.split("(", 1)[0].strip()
    if not re.fullmatch(r"[A-Za-z0-9_]+", name) or name not in pyspiel.registered_names():
        raise UserError(f"unknown OpenSpiel game '{name}'")
    _check_syntax(game, name)
    try:
        with _quiet_stderr():
            given = dict(pyspiel.game_parameters_from_string(game))
    except Exception as exc:  # pyspiel raises SpielError and pybind errors for malformed strings
        raise UserError(f"cannot read the game '{game}': {_first_line(exc)}") from None
    given.pop("name", None)
    spec = {t.short_name: t for t in pyspiel.registered_games()}[name].parameter_specification
    problems = []
    for key, value in sorted(given.items()):
        if key not in spec:
            problems.append(f"unknown parameter '{key}' (known: {', '.join(sorted(spec)) or 'none'})")
            continue
        default = spec[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
            if ok and not (1 if default >= 1 else 0) <= value <= PARAM_MAX:
                low = 1 if default >= 1 else 0
                problems.append(f"parameter '{key}' must be an integer from {low} to {PARAM_MAX:,}, got {value}")
                continue
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = type(value) is type(default)
        if not ok:
            problems.append(f"parameter '{key}' must be {type(default).__name__} like its default "
                            f"{default!r}, got {value!r}")
    return name, problems


def _check_syntax(game: str, name: str) -> None:
    """`name` or `name(key=value,...)` and nothing else: OpenSpiel's own reader ignores what
    follows the closing bracket (`tic_tac_toe()junk`), keeps the last of a repeated parameter
    (`connect_four(rows=4,rows=5)`) and drops an empty one, so a typo would silently choose
    another game than the one written."""
    def bad(why: str) -> UserError:
        return UserError(f"cannot read the game '{game}': {why} (write name or name(key=value,key=value))")
    if game == name:
        return
    rest = game[len(name):]
    if not rest.startswith("("):
        raise bad(f"unexpected {rest!r} after the name")
    depth, items, start = 0, [], 1
    for i, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad("a ')' without its '('")
            if depth == 0:
                if rest[i + 1:]:
                    raise bad(f"unexpected {rest[i + 1:]!r} after the closing bracket")
                items.append(rest[start:i])
        elif ch == "," and depth == 1:
            items.append(rest[start:i])
            start = i + 1
    if depth:
        raise bad("the closing bracket is missing")
    if items == [""]:
        return                                    # name(): no parameters
    seen = set()
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or not value:
            raise bad(f"{item!r} is not key=value")
        if key in seen:
            raise bad(f"parameter '{key}' is given twice")
        seen.add(key)


def _first_line(exc: BaseException) -> str:
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[-1].strip()[:200] if lines else type(exc).__name__


@functools.lru_cache(maxsize=64)
def load_spiel_game(game: str) -> pyspiel.Game:
    """Load `game` (with parameters, e.g. `connect_four(rows=4,columns=5)`) or explain why not.

    Supported: two-player, zero-sum, perfect-information, sequential, deterministic games with an
    observation tensor, at most MAX_GAME_LENGTH moves long, whose first state has a legal move
    and whose random playouts (PROBE_GAMES of them) have a legal move in every non-terminal state
    and end within the game's own length bound. Parameters are checked before OpenSpiel sees
    them."""
    if not isinstance(game, str):
        raise UserError(f"a game must be named by a string, got {game!r}")
    name, problems = _parameter_problems(game)
    if problems:
        raise UserError(f"game '{game}' has invalid parameters: " + "; ".join(problems))
    try:
        with _quiet_stderr():
            loaded = pyspiel.load_game(game)
    except Exception as exc:  # SpielError, and pybind errors (ValueError) for impossible sizes
        if "Unknown game" in str(exc):
            raise UserError(f"unknown OpenSpiel game '{game}'") from None
        raise UserError(f"cannot load OpenSpiel game '{game}': {_first_line(exc)}") from None
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
    if loaded.max_game_length() < 1:
        raise UserError(f"game '{game}' is not playable: OpenSpiel gives it a length bound of "
                        f"{loaded.max_game_length()} moves")
    if loaded.max_game_length() > MAX_GAME_LENGTH:
        raise UserError(f"game '{game}' is not supported: it may last {loaded.max_game_length():,} moves "
                        f"(OpenSpiel's max_game_length); azscale plays games of at most "
                        f"{MAX_GAME_LENGTH:,} moves, so that every self-play game ends")
    _probe(game, loaded)
    return loaded


def _probe(game: str, loaded: pyspiel.Game) -> None:
    """Refuse a game that cannot be played: no legal move at the start or in some reachable
    non-terminal state, or random games longer than the game's own bound."""
    limit = loaded.max_game_length()
    size = int(np.prod(loaded.observation_tensor_shape()))
    rng = np.random.default_rng(0)
    try:
        with _quiet_stderr():
            for k in range(PROBE_GAMES):
                s = loaded.new_initial_state()
                if s.is_terminal():
                    raise UserError(f"game '{game}' is not playable: its first state is already terminal")
                moves = 0
                while not s.is_terminal():
                    legal = s.legal_actions()
                    if not legal:
                        where = "its first state" if moves == 0 else f"a state after {moves} random move(s)"
                        raise UserError(f"game '{game}' is not playable: {where} has no legal move")
                    if len(s.observation_tensor()) != size:
                        raise UserError(f"game '{game}' is not playable: its observation tensor "
                                        f"does not have the declared size {size}")
                    if moves >= limit:
                        raise UserError(f"game '{game}' is not supported: a random game did not end within "
                                        f"its own bound of {limit:,} moves")
                    s.apply_action(int(legal[int(rng.integers(len(legal)))]))
                    moves += 1
    except pyspiel.SpielError as exc:
        raise UserError(f"game '{game}' is not playable: {_first_line(exc)}") from None


class SpielEngine:
    """A batch of pyspiel states. `states` is a list (or object array) of `pyspiel.State`."""

    name = "spiel"
    device = torch.device("cpu")           # pyspiel states live on the host; searches run on the CPU
    obs_dtype = torch.float32
    action_group = 1
    compile_simd = False
    lookback_fields: tuple[str, ...] = ()

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
