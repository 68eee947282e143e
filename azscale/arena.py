"""Players, and games between two of them, many at once, with seats alternating.

A match keeps every game as a pyspiel state (the record and the reference players read them).
Players see the games where it is their turn (`act(idx, states)`) and are told every move made
in any game (`apply(idx, actions)`), so an agent can keep its own copy of the games in its
engine's format. The AlphaZero agent searches all of its games in one batched search per move,
with the tensor twin on its device where the game has one; the reference players (uniform
random, pyspiel's C++ MCTSBot with random rollouts, a perfect player from the exact solver) act
game by game.

`players.PLAYERS` is the registry of reference players (kept in a light module, so help texts read
it without loading torch) and `make_player` the one way to make any player from its spec
(`PlayerSpec`): `evaluate` and the tournaments both use them. A new reference player is a class
in `references.py` and one entry in `players.PLAYERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .checks import number
from .engines import SpielEngine, make_engine
from .errors import UserError
from .players import PLAYERS, kinds, spec_names
from .search import MCTS, select_actions


class Player(Protocol):
    name: str

    def act(self, idx: np.ndarray, states: list) -> np.ndarray: ...


class AgentPlayer:
    """A network + batched MCTS; no root noise; `temperature` at every move (0 = most visited).
    Searches with the game's tensor twin on `device` where one exists (`engine_kind` auto),
    else with the pyspiel engine on the CPU."""

    def __init__(self, model, engine: SpielEngine, simulations: int, c_puct: float = 2.0,
                 temperature: float = 0.0, seed: int = 0, name: str = "agent", device="cpu",
                 engine_kind: str = "auto", compile: bool = False):
        from .selfplay import seed_for
        self.name = name
        self.temperature = float(temperature)
        search_engine = make_engine(engine.game, engine_kind, device)
        self.twin = search_engine if search_engine.name == "tensor" else None
        self.device = torch.device(search_engine.device)
        self.model = model.to(self.device).eval()
        self.mcts = MCTS(search_engine, self.model, simulations, c_puct, compile=compile)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed_for(seed, 31337))
        self.states = None

    def begin(self, n: int) -> None:
        if self.twin is not None:
            self.states = self.twin.new_states(n)

    def act(self, idx: np.ndarray, states: list) -> np.ndarray:
        if self.twin is not None:
            roots = self.twin.take(self.states, torch.as_tensor(idx, device=self.device))
        else:
            roots = states
        res = self.mcts.run(roots)
        return select_actions(res.visits, self.temperature, self.generator).cpu().numpy()

    def apply(self, idx: np.ndarray, actions: np.ndarray) -> None:
        if self.twin is not None:
            i = torch.as_tensor(idx, device=self.device)
            kids = self.twin.step(self.twin.take(self.states, i), torch.as_tensor(actions, device=self.device))
            self.twin.put(self.states, i, kids)


@dataclass
class MatchResult:
    wins: int
    draws: int
    losses: int
    games: list[dict[str, Any]]

    @property
    def n(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        return (self.wins + 0.5 * self.draws) / max(self.n, 1)


def play_match(engine: SpielEngine, a: Player, b: Player, games: int, progress: bool = False) -> MatchResult:
    """`games` games of `a` against `b`; `a` takes player 0 in even-numbered games."""
    states = engine.new_states(games)
    seats = [(a, b) if i % 2 == 0 else (b, a) for i in range(games)]
    actions: list[list[int]] = [[] for _ in range(games)]
    bar = None
    if progress:
        from .progress import bar as progress_bar
        bar = progress_bar(total=games, desc=f"{a.name} vs {b.name}", unit="game")
    for p in (a, b):
        if hasattr(p, "begin"):
            p.begin(games)
    live = [i for i in range(games)]
    while live:
        for who in (a, b):
            mine = np.array([i for i in live if not states[i].is_terminal()
                             and seats[i][states[i].current_player()] is who], dtype=np.int64)
            if mine.size:
                acts = who.act(mine, [states[i] for i in mine])
                for i, act in zip(mine, acts):
                    states[i].apply_action(int(act))
                    actions[i].append(int(act))
                for p in {id(a): a, id(b): b}.values():
                    if hasattr(p, "apply"):
                        p.apply(mine, np.asarray(acts))
        still = [i for i in live if not states[i].is_terminal()]
        if bar is not None:
            bar.update(len(live) - len(still))
        live = still
    if bar is not None:
        bar.close()
    w = d = l = 0
    rows = []
    for i, s in enumerate(states):
        r = s.returns()
        ra = r[0] if i % 2 == 0 else r[1]
        w += ra > 0
        d += ra == 0
        l += ra < 0
        rows.append({"seat0": seats[i][0].name, "seat1": seats[i][1].name, "actions": actions[i],
                     "return0": r[0], "return1": r[1], "length": len(actions[i])})
    return MatchResult(int(w), int(d), int(l), rows)


# -- the players' registry -------------------------------------------------------------------------

@dataclass(frozen=True)
class PlayerSpec:
    """A player as a tournament records it: an agent (a checkpoint) or a reference player."""
    name: str
    kind: str                      # agent, or a kind in players.PLAYERS
    checkpoint: str = ""           # for agents
    run: str = ""
    step: int = -1
    params: int = 0
    simulations: int = 0           # for references that search (mcts-N)


def reference(kind: str, simulations: int = 0) -> PlayerSpec:
    """The spec of a reference player of `kind` (`PLAYERS`): named by its kind, or KIND-N for
    one that searches N simulations per move."""
    if kind not in PLAYERS:
        raise UserError(f"unknown opponent '{kind}' (choose {kinds()})")
    if PLAYERS[kind].searches:
        return PlayerSpec(f"{kind}-{simulations}", kind, simulations=simulations)
    return PlayerSpec(kind, kind)


def reference_players(spec: str) -> list[PlayerSpec]:
    """`random,mcts-100,mcts-300,perfect` -> reference player specs."""
    out = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        kind, _, n = item.rpartition("-")
        if item in PLAYERS and not PLAYERS[item].searches:
            out.append(reference(item))
        elif kind in PLAYERS and PLAYERS[kind].searches and n.isdigit():
            sims = number(int(n), f"reference player '{item}': the simulations", lo=1, hi=1_000_000, integer=True)
            out.append(reference(kind, sims))
        else:
            raise UserError(f"unknown reference player '{item}' ({spec_names()})")
    return out


def agent_spec(checkpoint: Path, meta: dict[str, Any], run: str) -> PlayerSpec:
    """An agent: the network of a checkpoint (`meta`, as `checkpoints.load_checkpoint` reads it)."""
    params = meta.get("params")
    if not isinstance(params, int):
        raise UserError(f"{checkpoint}: damaged checkpoint (params)")
    return PlayerSpec(f"{run}@{meta['step']}", "agent", str(checkpoint), run, int(meta["step"]), params)


def make_player(spec: PlayerSpec, engine: SpielEngine, seed: int, *, simulations: int = 300,
                temperature: float = 0.0, device: str = "cpu", models: dict | None = None) -> Player:
    """The player `spec` names. An agent searches `simulations` per move at `temperature` on
    `device`; its network is loaded once per checkpoint into `models` (when given)."""
    if spec.kind == "agent":
        from .checkpoints import load_model
        models = {} if models is None else models
        if spec.checkpoint not in models:
            models[spec.checkpoint] = load_model(spec.checkpoint)
        model, meta = models[spec.checkpoint]
        return AgentPlayer(model, engine, simulations, meta["config"]["c_puct"], temperature, seed, name=spec.name,
                           device=device)
    if spec.kind not in PLAYERS:
        raise UserError(f"unknown player kind {spec.kind!r}")
    return PLAYERS[spec.kind].make(spec, engine, seed)


def evaluate_checkpoint(checkpoint: Path, opponent: str, *, games: int, simulations: int,
                        opponent_simulations: int, seed: int = 0, temperature: float = 0.0,
                        progress: bool = False, device: str = "cpu") -> MatchResult:
    """A checkpoint's agent against a reference player of kind `opponent`, seats alternating."""
    from .checkpoints import load_model
    model, meta = load_model(checkpoint)
    engine = SpielEngine(meta["config"]["game"])
    agent = PlayerSpec(f"{meta.get('run', 'agent')}@{meta['step']}", "agent", str(checkpoint))
    models = {str(checkpoint): (model, meta)}
    return play_match(engine, make_player(agent, engine, seed, simulations=simulations, temperature=temperature,
                                          device=device, models=models),
                      make_player(reference(opponent, opponent_simulations), engine, seed), games, progress)
