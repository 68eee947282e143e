"""Self-play speed, measured (never asserted in a timed test).

`bench_selfplay` plays self-play for a fixed time in `actors` processes (one core each) and
reports simulations/s, states/s, the mean network batch and the share of time spent in the
network. In the same run it measures pyspiel's C++ MCTSBot with a random-rollout evaluator on
the same game and budget, in the same number of processes, and prints the ratio.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

# The paper's per-agent budget (PAPER.md section 3): 10,000 learner steps of 6,553 states.
PAPER_STATES_PER_AGENT = 10_000 * 6_553


def _ours(cfg_dict: dict[str, Any], index: int, seconds: float, out) -> None:
    import torch
    torch.set_num_threads(1)
    from .config import from_dict
    from .selfplay import Actor
    cfg = from_dict(cfg_dict)
    from .selfplay import resolve_device
    actor = Actor(cfg, index, device=resolve_device(cfg.device))
    actor.play(10**12, 0, deadline=time.perf_counter() + min(2.0, seconds / 5))  # warm-up
    t0 = time.perf_counter()
    p = actor.play(10**12, 0, deadline=t0 + seconds)
    wall = time.perf_counter() - t0
    # every move searched = `simulations` simulations in each game in flight
    out.put({"sims": p.simulations, "states": p.simulations / actor.cfg.simulations,
             "calls": p.net_calls, "net_states": p.net_states, "net_s": p.net_seconds, "wall": wall})


def _baseline(game: str, simulations: int, seconds: float, seed: int, out) -> None:
    import pyspiel
    g = pyspiel.load_game(game)
    bot = pyspiel.MCTSBot(g, pyspiel.RandomRolloutEvaluator(1, seed), 2.0, simulations, 1000,
                          False, seed, False)
    t0 = time.perf_counter()
    sims = 0
    state = g.new_initial_state()
    while time.perf_counter() - t0 < seconds:
        if state.is_terminal():
            state = g.new_initial_state()
        state.apply_action(bot.step(state))
        sims += simulations
    out.put({"sims": sims, "wall": time.perf_counter() - t0})


def _in_processes(target, args_for, n: int) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(i), q)) for i in range(n)]
    for p in procs:
        p.start()
    res = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return res


def _measure(cfg, seconds: float, actors: int) -> dict[str, Any]:
    ours = _in_processes(_ours, lambda i: (cfg.to_dict(), i, seconds), actors)
    wall = max(r["wall"] for r in ours)
    states = sum(r["states"] for r in ours)
    out = {"simulations_per_s": sum(r["sims"] for r in ours) / wall, "states_per_s": states / wall,
           "mean_net_batch": sum(r["net_states"] for r in ours) / max(sum(r["calls"] for r in ours), 1),
           "net_time_share": sum(r["net_s"] for r in ours) / sum(r["wall"] for r in ours), "seconds": round(wall, 2)}
    if states:
        out["paper_agent_hours"] = PAPER_STATES_PER_AGENT / (states / wall) / 3600
    return out


def bench_selfplay(cfg, seconds: float = 20.0, actors: int | None = None,
                   baseline: bool = True) -> dict[str, Any]:
    """Measure self-play with each available engine (pyspiel, and the tensor twin where one
    exists) and pyspiel's C++ MCTSBot, all in this run, each in `actors` processes."""
    from .config import base_name
    from .engines.tensor import TWINS
    actors = actors or os.cpu_count() or 1
    kinds = ["spiel"] + (["tensor"] if base_name(cfg.game) in TWINS else [])
    if cfg.engine in ("spiel", "tensor"):
        kinds = [cfg.engine]
    out: dict[str, Any] = {
        "game": cfg.game, "family": cfg.family, "width": cfg.width, "depth": cfg.depth,
        "simulations_per_move": cfg.simulations, "games_in_flight": cfg.games_in_flight,
        "actors": actors, "device": cfg.device, "engines": {}}
    for kind in kinds:
        out["engines"][kind] = _measure(cfg.replace(engine=kind), seconds, actors)
    if "tensor" in out["engines"] and "spiel" in out["engines"]:
        out["tensor_vs_spiel"] = out["engines"]["tensor"]["simulations_per_s"] / out["engines"]["spiel"]["simulations_per_s"]
    best = max(out["engines"].values(), key=lambda r: r["simulations_per_s"])
    out["simulations_per_s"] = best["simulations_per_s"]
    if baseline:
        base = _in_processes(_baseline, lambda i: (cfg.game, cfg.simulations, seconds, i), actors)
        bsims = sum(r["sims"] for r in base) / max(r["wall"] for r in base)
        out["baseline"] = "pyspiel MCTSBot, random rollouts, C++"
        out["baseline_simulations_per_s"] = bsims
        for r in out["engines"].values():
            r["ratio_vs_baseline"] = r["simulations_per_s"] / bsims
    return out


def format_bench(r: dict[str, Any]) -> str:
    lines = [f"self-play benchmark: {r['game']}, {r['family']} width {r['width']} depth {r['depth']}, "
             f"{r['simulations_per_move']} simulations/move, {r['games_in_flight']} games in flight per actor, "
             f"{r['actors']} actor process(es)",
             f"  {'engine':<10}{'sims/s':>14}{'states/s':>12}{'net batch':>11}{'net time':>10}{'paper agent':>13}"
             + ("   vs MCTSBot" if "baseline_simulations_per_s" in r else "")]
    for kind, e in r["engines"].items():
        lines.append(f"  {kind:<10}{e['simulations_per_s']:>14,.0f}{e['states_per_s']:>12,.1f}{e['mean_net_batch']:>11,.1f}"
                     f"{e['net_time_share']:>10.1%}{e.get('paper_agent_hours', float('nan')):>11,.1f} h"
                     + (f"{e['ratio_vs_baseline']:>12.2f}x" if "ratio_vs_baseline" in e else ""))
    if "tensor_vs_spiel" in r:
        lines.append(f"  tensor / spiel: {r['tensor_vs_spiel']:.2f}x")
    if "baseline_simulations_per_s" in r:
        lines.append(f"  baseline: {r['baseline']}, same processes: {r['baseline_simulations_per_s']:,.0f} sims/s")
    lines.append(f"  (paper agent = {PAPER_STATES_PER_AGENT:,} self-play states at the measured rate)")
    return "\n".join(lines)


def peak_rss_gb() -> float:
    """Peak resident memory of this process and of its finished children, in GB (Linux)."""
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024 ** 2


def bench_zipf(source, workers: int | None = None, mle: bool = True) -> dict[str, Any]:
    """Time the states table and both fits on an existing games table (e.g. random games)."""
    from .analysis.states import build_states
    from .analysis.zipf import fit_all, window_for
    from .runs import read_games

    workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    games = read_games(source)
    t_read = time.perf_counter() - t0
    st, _ = build_states(games, workers=workers)
    t_states = time.perf_counter() - t0 - t_read
    counts = st["count"].to_numpy()
    t1 = time.perf_counter()
    ls, *rest = fit_all(counts, window_for("random"), mle=mle)
    t_fit = time.perf_counter() - t1
    return {"games": games.num_rows, "visits": int(counts.sum()), "distinct_states": int(len(counts)),
            "read_s": t_read, "states_s": t_states, "fits_s": t_fit,
            "total_s": time.perf_counter() - t0, "peak_rss_gb": peak_rss_gb(), "workers": workers,
            "ls_alpha": ls.alpha, "mle_alpha": rest[0].alpha if rest else None}
