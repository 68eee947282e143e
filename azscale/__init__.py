"""azscale: AlphaZero scaling studies on OpenSpiel games.

The Python API (pandas objects; see `azscale.api`): `load_run`, `load_sweep`, `load_metrics`,
`load_games`, `load_states`, `load_elo`, `load_loss`. They are imported on first use, so
`import azscale` stays light.
"""

from .version import __version__

__all__ = ["load_run", "load_sweep", "load_metrics", "load_games", "load_states", "load_elo", "load_loss"]


def __getattr__(name):
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'azscale' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
