"""In-process A/B of the CPU search's node rows (commit e2c94ec): two self-play actors with the
same settings and seed play the same games in one process, alternating which moves first; one
keeps new nodes' rows in action order where K = A >= mcts.WIDE_ROWS_MIN (the default), the other
is forced to lay out slots for every new node (its tree is allocated as if K != A). Prints the
mean seconds per move of each over MOVES moves (after 2 warm-up moves), and the median over
moves of the ratio of the two actors' times for the same move (robust to the machine's drift).

    python results/bench_selfplay/rows_ab.py GAME MOVES [--all-wide]

--all-wide lowers WIDE_ROWS_MIN to 1 so narrow games (connect_four, oware) use the wide rows too.
"""
import sys
import time

import torch

torch.set_num_threads(1)
from azscale.nets import flush_subnormals  # noqa: E402
flush_subnormals()
from azscale.config import resolve  # noqa: E402
from azscale.search import mcts  # noqa: E402
from azscale.selfplay import Actor  # noqa: E402

game, moves = sys.argv[1], int(sys.argv[2])
if "--all-wide" in sys.argv:
    mcts.WIDE_ROWS_MIN = 1
cfg = resolve(game, "paper", {"width": 64, "simulations": 300, "games_in_flight": 1024, "engine": "tensor",
                              "device": "cpu", "compile": "auto"})
wide, slots = Actor(cfg, 0, device="cpu"), Actor(cfg, 0, device="cpu")
alloc = slots.mcts._tree_for
slots.mcts._tree_for = lambda B, K, A: alloc(B, K, -1)
T = {"wide": 0.0, "slots": 0.0}
ratios = []
for i in range(moves + 2):
    order = [("wide", wide), ("slots", slots)] if i % 2 else [("slots", slots), ("wide", wide)]
    dt = {}
    for name, actor in order:
        t = time.perf_counter()
        actor.play(10**12, 0, max_moves=1)
        dt[name] = time.perf_counter() - t
    if i >= 2:
        for name in dt:
            T[name] += dt[name]
        ratios.append(dt["slots"] / dt["wide"])
print(f"{game}: legal columns {wide.mcts.tree.legal.shape[2]} vs {slots.mcts.tree.legal.shape[2]}; "
      f"seconds per move (1,024 games, 300 simulations): rows in action order {T['wide'] / moves:.3f}, "
      f"slots {T['slots'] / moves:.3f}; slots / action order {T['slots'] / T['wide']:.3f} in all, "
      f"median per move {sorted(ratios)[len(ratios) // 2]:.3f}")
