"""The players' registry: the reference players' kinds (`PLAYERS`), what each is, and how to make
one. Light on purpose (the players themselves live in `references.py`, imported only when one is
made), so the command line's help texts are built from it without loading torch.

A new reference player is a class in `references.py` and one entry here: `evaluate --opponent`,
`tournament --reference`, the sweep's tournament and their help texts all find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Reference:
    """A kind of reference player: what it is (for help texts), how to make one from its spec
    (`arena.PlayerSpec`), on a game (an engine), with a seed."""
    about: str
    make: Callable[[Any, Any, int], Any]
    searches: bool = False         # named KIND-N: N simulations per move


def _random(spec, engine, seed):
    from .references import RandomPlayer
    return RandomPlayer(seed, name=spec.name)


def _mcts(spec, engine, seed):
    from .references import SpielMCTSPlayer
    return SpielMCTSPlayer(engine.spiel_game, spec.simulations, seed, name=spec.name)


def _perfect(spec, engine, seed):
    from .references import PerfectPlayer
    return PerfectPlayer(engine.spiel_game, seed, name=spec.name)


PLAYERS: dict[str, Reference] = {
    "random": Reference("uniform random", _random),
    "mcts": Reference("pyspiel's MCTSBot, random rollouts", _mcts, searches=True),
    "perfect": Reference("perfect play from the exact solver", _perfect),
}


def one_of(words: list[str]) -> str:
    """`a, b or c`."""
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


def kinds() -> str:
    """The kinds, as a choice: `random, mcts or perfect`."""
    return one_of(list(PLAYERS))


def kinds_explained() -> str:
    """The kinds with what each is: `random (uniform random), mcts (...) or perfect (...)`."""
    return one_of([f"{k} ({r.about})" for k, r in PLAYERS.items()])


def spec_names() -> str:
    """How reference players are named in a list: `random, mcts-N, perfect`."""
    return ", ".join(k + ("-N" if r.searches else "") for k, r in PLAYERS.items())
