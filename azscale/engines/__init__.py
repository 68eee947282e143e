"""Engines: one interface over a batch of games in lockstep (see `base.Engine`): the pyspiel
engine for any supported OpenSpiel game, and tensor twins of the seed games (`twin.py` holds
their contract, one module per game). `TWINS` is the registry: a new twin is a module and a line."""

from .base import Engine, StepInfo
from .spiel import SpielEngine, load_spiel_game


# the registry of tensor twins: game -> "module:factory" in this package (imported when used)
TWINS = {
    "checkers": "checkers:CheckersTensor",
    "connect_four": "connect_four:connect_four",      # bitboards where the board fits 64 bits
    "oware": "oware:OwareTensor",
    "pentago": "pentago:PentagoTensor",
    "tic_tac_toe": "tic_tac_toe:TicTacToeTensor",
}


def shapes(game: str) -> tuple[tuple[int, ...], int]:
    """(observation shape, number of distinct actions) of `game`, as every engine of it has them,
    from OpenSpiel's game object alone (no engine is built)."""
    g = load_spiel_game(game)
    return tuple(g.observation_tensor_shape()), g.num_distinct_actions()


def make_tensor_engine(game: str, device="cpu"):
    """The tensor twin of `game` on `device`, or one line saying there is none."""
    import importlib

    from ..config import base_name
    from ..errors import UserError
    where = TWINS.get(base_name(game))
    if where is None:
        raise UserError(f"no tensor twin for '{base_name(game)}' yet (available: {', '.join(sorted(TWINS))}); "
                        f"use --engine spiel")
    module, factory = where.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), factory)(game, device)


def make_engine(game: str, kind: str = "auto", device="cpu") -> Engine:
    """The engine for `game`: `spiel` (any supported OpenSpiel game), `tensor` (a tensor twin,
    refused with one line where none exists) or `auto` (the twin where one exists)."""
    from ..config import base_name
    from ..errors import UserError
    load_spiel_game(game)          # the game and its parameters are checked before any engine
    if kind == "spiel" or (kind == "auto" and base_name(game) not in TWINS):
        return SpielEngine(game)
    if kind in ("auto", "tensor"):
        return make_tensor_engine(game, device)
    raise UserError(f"unknown engine '{kind}' (choose auto, spiel or tensor)")


__all__ = ["Engine", "StepInfo", "SpielEngine", "TWINS", "load_spiel_game", "make_engine", "make_tensor_engine", "shapes"]
