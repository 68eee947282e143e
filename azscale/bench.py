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


def _graphs() -> int:
    """Graphs torch.compile has built in this process so far."""
    try:
        from torch._dynamo.utils import counters
        return int(counters["stats"]["unique_graphs"])
    except Exception:
        return 0


def _sync(device) -> None:
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _ours(cfg_dict: dict[str, Any], index: int, seconds: float, device: str, out) -> None:
    from .procs import die_with_parent
    die_with_parent()
    import torch
    torch.set_num_threads(1)
    from .nets import flush_subnormals
    flush_subnormals()
    from .config import from_dict
    from .selfplay import Actor
    cfg = from_dict(cfg_dict)
    actor = Actor(cfg, index, device=device)
    # warm-up: play moves until three in a row compiled nothing new (the first moves compile the
    # search's graphs, one per tree-depth bucket); this is the compile warm-up we report
    t0 = time.perf_counter()
    quiet, limit = 0, t0 + max(600.0, 10 * seconds)
    actor.play(10**12, 0, max_moves=1)
    actor.mcts.precompile(min(64, cfg.simulations + 1))
    while quiet < 3 and time.perf_counter() < limit:
        g = _graphs()
        actor.play(10**12, 0, max_moves=1)
        quiet = quiet + 1 if _graphs() == g else 0
    _sync(actor.device)
    warm = time.perf_counter() - t0
    stats0 = (actor.mcts.stats.waves, actor.mcts.stats.levels, _graphs())
    t0 = time.perf_counter()
    p = actor.play(10**12, 0, deadline=t0 + seconds)
    _sync(actor.device)
    wall = time.perf_counter() - t0
    waves = actor.mcts.stats.waves - stats0[0]
    # the network's share: the same network alone on a batch of this size, timed here
    net_s = _time_network(actor, cfg.games_in_flight) * p.net_calls
    out.put({"sims": p.simulations, "states": p.simulations / actor.cfg.simulations,
             "calls": p.net_calls, "net_states": p.net_states, "net_s": min(net_s, wall), "wall": wall,
             "warmup_s": warm, "levels_per_wave": (actor.mcts.stats.levels - stats0[1]) / max(waves, 1),
             "recompiles": _graphs() - stats0[2], "compiled": actor.mcts.compile})


def _time_network(actor, batch: int, repeats: int = 30) -> float:
    """Median seconds of one forward pass of the actor's network on `batch` observations."""
    import torch
    obs, legal, *_ = actor.engine.batch_info(actor.engine.new_states(batch))
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 3):
            _sync(actor.device)
            t = time.perf_counter()
            actor.model(obs)
            _sync(actor.device)
            times.append(time.perf_counter() - t)
    return float(sorted(times[3:])[repeats // 2])


def wave_profile(cfg, device: str = "cpu") -> dict[str, Any]:
    """Aten ops and host reads per simulation wave of this configuration's device search (eager,
    on the same games in flight, a short search): what a GPU runs. On a CPU the tree walk runs as
    compiled loops instead (`search/native.py`), which make no aten ops at all."""
    import torch
    from .engines import make_engine
    from .nets import build
    from .search import MCTS
    from .search.inspect import is_host_read, wave_ops
    eng = make_engine(cfg.game, cfg.engine, device)
    model = build(cfg.family, eng.obs_shape, eng.num_actions, cfg.width, cfg.depth).to(eng.device).eval()
    waves = wave_ops(MCTS(eng, model, 16, native=False), eng.new_states(cfg.games_in_flight))
    ops = [len(w) for w in waves]
    reads = [sum(is_host_read(o) for o in w) for w in waves]
    del torch
    return {"ops_per_wave": sum(ops) / len(ops), "host_reads_per_wave": sum(reads) / len(reads)}


def _baseline(game: str, simulations: int, seconds: float, seed: int, out) -> None:
    from .procs import die_with_parent
    die_with_parent()
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
    """Run `target` in n processes and gather one result from each. A process that dies before
    it answers stops the benchmark with its exit code (it used to leave the parent waiting)."""
    import queue
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(i), q)) for i in range(n)]
    from .procs import workers_ignore_interrupt
    started: list = []
    res: list[dict[str, Any]] = []
    try:
        # A Ctrl-C pressed while they start is held back and raised as the block ends: inside this
        # `try`, so the workers are killed before the queue's semaphores are unlinked at exit (a
        # worker still unpickling its arguments would otherwise print a FileNotFoundError).
        with workers_ignore_interrupt():            # Ctrl-C is the parent's alone: no worker tracebacks
            for p in procs:
                p.start()
                started.append(p)
        while len(res) < n:
            try:
                res.append(q.get(timeout=2.0))
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode is not None and p.exitcode != 0]
                if dead or all(p.exitcode is not None for p in procs) and q.empty():
                    from .errors import UserError
                    raise UserError(f"a benchmark process died before it reported (exit code {dead[0] if dead else 0}; "
                                    f"its own error, if any, is printed above)")
    finally:
        for p in started:
            if p.exitcode is None and len(res) < n:
                p.kill()
            p.join()
    return res


def _measure(cfg, seconds: float, actors: int, devices: list[str]) -> dict[str, Any]:
    ours = _in_processes(_ours, lambda i: (cfg.to_dict(), i, seconds, devices[i]), actors)
    wall = max(r["wall"] for r in ours)
    states = sum(r["states"] for r in ours)
    out = {"simulations_per_s": sum(r["sims"] for r in ours) / wall, "states_per_s": states / wall,
           "mean_net_batch": sum(r["net_states"] for r in ours) / max(sum(r["calls"] for r in ours), 1),
           "net_time_share": sum(r["net_s"] for r in ours) / sum(r["wall"] for r in ours), "seconds": round(wall, 2),
           "compiled": ours[0]["compiled"], "warmup_seconds": max(r["warmup_s"] for r in ours),
           "levels_per_wave": sum(r["levels_per_wave"] for r in ours) / len(ours),
           "recompiles_while_measuring": sum(r["recompiles"] for r in ours)}
    if states:
        out["paper_agent_hours"] = PAPER_STATES_PER_AGENT / (states / wall) / 3600
    out.update(wave_profile(cfg, "cpu" if devices[0] == "cpu" else devices[0]))
    return out


def bench_selfplay(cfg, seconds: float = 20.0, actors: int | None = None,
                   baseline: bool = True) -> dict[str, Any]:
    """Measure self-play with each available engine (pyspiel, and the tensor twin where one
    exists) and pyspiel's C++ MCTSBot, all in this run. On a CPU each engine runs in `actors`
    processes (default: one per core); on CUDA one process per GPU, all games in flight there."""
    from .config import base_name
    from .engines import TWINS
    from .selfplay import actor_devices, resolve_device
    device = resolve_device(cfg.device, cfg.engine, cfg.game)
    if device.type == "cuda":
        import torch
        actors = actors or torch.cuda.device_count()
    actors = actors or os.cpu_count() or 1
    kinds = ["spiel"] + (["tensor"] if base_name(cfg.game) in TWINS else [])
    if cfg.engine in ("spiel", "tensor"):
        kinds = [cfg.engine]
    out: dict[str, Any] = {
        "game": cfg.game, "family": cfg.family, "width": cfg.width, "depth": cfg.depth,
        "simulations_per_move": cfg.simulations, "games_in_flight": cfg.games_in_flight,
        "actors": actors, "device": str(device), "engines": {}}
    # each engine's "actors": its processes (on CUDA the twin runs one per GPU, the CPU engines one per core)
    cpu_actors = actors if device.type == "cpu" else (os.cpu_count() or 1)   # pyspiel and MCTSBot use the cores
    for kind in kinds:
        kdev = device if kind == "tensor" else resolve_device("cpu")
        n = actors if kdev.type == "cuda" else cpu_actors
        devs = [str(d) for d in actor_devices(kdev, n)]
        out["engines"][kind] = _measure(cfg.replace(engine=kind, device=str(kdev)), seconds, n, devs)
    if "tensor" in out["engines"] and "spiel" in out["engines"]:
        out["tensor_vs_spiel"] = out["engines"]["tensor"]["simulations_per_s"] / out["engines"]["spiel"]["simulations_per_s"]
    best = max(out["engines"].values(), key=lambda r: r["simulations_per_s"])
    out["simulations_per_s"] = best["simulations_per_s"]
    if baseline:
        base = _in_processes(_baseline, lambda i: (cfg.game, cfg.simulations, seconds, i), cpu_actors)
        bsims = sum(r["sims"] for r in base) / max(r["wall"] for r in base)
        out["baseline"] = "pyspiel MCTSBot, random rollouts, C++"
        out["baseline_simulations_per_s"] = bsims
        for r in out["engines"].values():
            r["ratio_vs_baseline"] = r["simulations_per_s"] / bsims
    return out


def format_bench(r: dict[str, Any]) -> str:
    lines = [f"self-play benchmark: {r['game']}, {r['family']} width {r['width']} depth {r['depth']}, "
             f"{r['simulations_per_move']} simulations/move, {r['games_in_flight']} games in flight per actor, "
             f"{r['actors']} actor process(es), device {r['device']}",
             f"  {'engine':<8}{'sims/s':>12}{'states/s':>11}{'net time':>10}{'ops/wave':>10}{'host reads':>12}"
             f"{'levels':>8}{'warm-up':>9}{'paper agent':>13}"
             + ("  vs MCTSBot" if "baseline_simulations_per_s" in r else "")]
    for kind, e in r["engines"].items():
        warm = f"{e['warmup_seconds']:.0f} s" + ("" if e["compiled"] else "*")
        lines.append(f"  {kind:<8}{e['simulations_per_s']:>12,.0f}{e['states_per_s']:>11,.0f}{e['net_time_share']:>10.1%}"
                     f"{e['ops_per_wave']:>10,.0f}{e['host_reads_per_wave']:>12.1f}{e['levels_per_wave']:>8.1f}{warm:>9}"
                     f"{e.get('paper_agent_hours', float('nan')):>11,.1f} h"
                     + (f"{e['ratio_vs_baseline']:>11.2f}x" if "ratio_vs_baseline" in e else ""))
    if "tensor_vs_spiel" in r:
        lines.append(f"  tensor / spiel: {r['tensor_vs_spiel']:.2f}x")
    if "baseline_simulations_per_s" in r:
        lines.append(f"  baseline: {r['baseline']}, same processes: {r['baseline_simulations_per_s']:,.0f} sims/s")
    lines.append(f"  (net time: the network alone on a batch of this size, timed in each process, times its calls; "
                 f"ops/wave and host reads: aten ops of one eager wave of the device search, what a GPU runs (a "
                 f"compiled wave runs the same ops fused; on a CPU the tree walk is compiled loops instead); "
                 f"levels: descent levels per wave; warm-up: compiling the search (* = not compiled: first moves); "
                 f"paper agent = {PAPER_STATES_PER_AGENT:,} self-play states at the measured rate)")
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


def bench_replay(cfg, arms: list[tuple[int, float]], steps: int = 5, reps: int = 3) -> dict[str, Any]:
    """The replay intervention's cost on the learner's hot path. Self-play examples of `cfg` are
    played once (states_per_step per step, after a full buffer); then each arm (cap, beta) --
    the first is the baseline -- runs the same `steps` learner steps (buffer.add, the Adam
    updates with their draws, the step's replay metrics) in this process, the arms alternating
    `reps` times after one uncounted warm-up round. Returns the median seconds per step and per add of each arm, and the ratio of
    each arm's step time to the baseline's."""
    import numpy as np
    import torch

    from .config import analysis_settings
    from .nets import build
    from .replay import ReplayBuffer
    from .selfplay import Actor
    from .train import learner_update, make_optimizer
    torch.set_num_threads(1)
    need = cfg.buffer_size + steps * cfg.states_per_step
    actor = Actor(cfg)
    parts, have = [], 0
    t0 = time.perf_counter()
    while have < need:
        p = actor.play(need - have, 0)
        parts.append(p)
        have += len(p.obs)
    play_s = time.perf_counter() - t0
    ex = {k: np.concatenate([getattr(p, k) for p in parts])[:need]
          for k in ("obs", "legal", "policy", "value", "player", "turn")}
    eng = actor.engine
    late = analysis_settings(cfg.game)["late_turn"]
    times: dict[tuple[int, float], dict[str, list[float]]] = {a: {"step": [], "add": []} for a in arms}
    metrics: dict[tuple[int, float], dict[str, Any]] = {}
    for rep in range(reps + 1):              # the first round warms up and is not counted
        for arm in arms:
            buf = ReplayBuffer(cfg.buffer_size, eng.obs_size, eng.num_actions, "cpu", eng.obs_dtype,
                               cap=arm[0], beta=arm[1], late_turn=late)
            buf.add(*(ex[k][:cfg.buffer_size] for k in ex))
            torch.manual_seed(0)
            model = build(cfg.family, eng.obs_shape, eng.num_actions, cfg.width, cfg.depth)
            opt = make_optimizer(model, cfg, torch.device("cpu"))
            gen = torch.Generator().manual_seed(0)
            for s in range(steps):
                lo = cfg.buffer_size + s * cfg.states_per_step
                chunk = [ex[k][lo:lo + cfg.states_per_step] for k in ex]
                t0 = time.perf_counter()
                buf.add(*chunk)
                t1 = time.perf_counter()
                learner_update(model, opt, buf, cfg, gen)
                metrics[arm] = buf.stats()
                t2 = time.perf_counter()
                if rep:
                    times[arm]["add"].append(t1 - t0)
                    times[arm]["step"].append(t2 - t0)
    base = float(np.median(times[arms[0]]["step"]))
    rows = [{"cap": a[0], "beta": a[1], "step_s": float(np.median(times[a]["step"])),
             "add_s": float(np.median(times[a]["add"])),
             "ratio": float(np.median(times[a]["step"])) / base, **metrics[a]} for a in arms]
    return {"game": cfg.game, "width": cfg.width, "buffer_size": cfg.buffer_size,
            "states_per_step": cfg.states_per_step, "updates_per_step": cfg.updates_per_step,
            "batch_size": cfg.batch_size, "steps": steps, "reps": reps, "examples": need,
            "selfplay_s": play_s, "arms": rows, "threads": 1}


def format_bench_replay(r: dict[str, Any]) -> str:
    lines = [f"replay benchmark: {r['game']}, width {r['width']}, buffer {r['buffer_size']:,}, "
             f"{r['states_per_step']:,} new states and {r['updates_per_step']} updates of {r['batch_size']:,} "
             f"per step; {r['steps']} steps x {r['reps']} alternating repeats, 1 thread, this process",
             f"{'cap':>6} {'beta':>5} {'step ms':>9} {'add ms':>8} {'vs off':>7} {'distinct':>9} {'top':>7}"
             f" {'late drawn':>10}"]
    for a in r["arms"]:
        f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"{a['cap'] or 'off':>6} {a['beta']:>5g} {a['step_s'] * 1e3:>9.1f} {a['add_s'] * 1e3:>8.1f} "
                     f"{a['ratio']:>6.2f}x {f(a['replay_distinct_share']):>9} {f(a['replay_top_share']):>7} "
                     f"{f(a['learned_late_share']):>10}")
    return "\n".join(lines)
