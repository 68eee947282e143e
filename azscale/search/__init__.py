"""One batched tree search for every engine and device (see `mcts.py`)."""

from .mcts import MCTS, DepthBound, SearchResult, SearchStats
from .policy import select_actions, to_player0
from .tree import Tree

__all__ = ["MCTS", "DepthBound", "SearchResult", "SearchStats", "Tree", "select_actions", "to_player0"]
