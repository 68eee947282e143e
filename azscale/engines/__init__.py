"""Engines: one interface over a batch of games in lockstep (see `base.Engine`)."""

from .base import Engine, StepInfo
from .spiel import SpielEngine, load_spiel_game


def make_engine(game: str, kind: str = "auto", device="cpu") -> Engine:
    """The engine for `game`: `spiel` (any supported OpenSpiel game), `tensor` (a tensor twin,
    refused with one line where none exists) or `auto` (the twin where one exists)."""
    from ..config import base_name
    from ..errors import UserError
    from .tensor import TWINS, make_tensor_engine
    load_spiel_game(game)          # the game and its parameters are checked before any engine
    if kind == "spiel" or (kind == "auto" and base_name(game) not in TWINS):
        return SpielEngine(game)
    if kind in ("auto", "tensor"):
        return make_tensor_engine(game, device)
    raise UserError(f"unknown engine '{kind}' (choose auto, spiel or tensor)")


__all__ = ["Engine", "StepInfo", "SpielEngine", "load_spiel_game", "make_engine"]
