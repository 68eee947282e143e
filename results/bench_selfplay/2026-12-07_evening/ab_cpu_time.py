# A/B of self-play speed between two checkouts, by process CPU time (less sensitive to a loaded
# machine than the bench's wall time). Run alternately: PYTHONPATH=<checkout> python ab_cpu_time.py oware 64 300 1024
# Prints simulations per CPU-second for three measured plays of 3 moves (1,024 games, 300 simulations).
import sys, time, torch
torch.set_num_threads(1)
from azscale.nets import flush_subnormals; flush_subnormals()
from azscale.config import resolve
from azscale.selfplay import Actor
game, width, sims, gif = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = resolve(game, preset="cpu", overrides=dict(width=width, simulations=sims, games_in_flight=gif, actors=1))
a = Actor(cfg, 0, device="cpu")
a.play(10**12, 0, max_moves=1); a.mcts.precompile(min(64, cfg.simulations + 1))
for _ in range(3): a.play(10**12, 0, max_moves=1)
out = []
for r in range(3):
    t = time.process_time(); w = time.perf_counter()
    s0 = a.mcts.stats.simulations
    a.play(10**12, 0, max_moves=3)
    out.append((a.mcts.stats.simulations - s0) / (time.process_time() - t))
print(" ".join(f"{x:,.0f}" for x in out))
