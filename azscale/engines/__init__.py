"""Engines: one interface over a batch of games in lockstep (see `base.Engine`)."""

from .base import Engine, StepInfo
from .spiel import SpielEngine, load_spiel_game


def make_engine(game: str, kind: str = "auto") -> Engine:
    """The engine for `game`. Only the pyspiel engine exists so far; `tensor` is refused clearly."""
    if kind in ("auto", "spiel"):
        return SpielEngine(game)
    from ..errors import UserError
    raise UserError(f"engine '{kind}' is not available (choose auto or spiel)")


__all__ = ["Engine", "StepInfo", "SpielEngine", "load_spiel_game", "make_engine"]
