"""Round-robin tournaments between agents (runs x checkpoints) and reference players.

Every pair plays `games_per_pair` games, seats alternating, with the paper's match settings by
default (temperature 0.25 at every move, no noise, `simulations` per move). All of a pair's
games are in flight at once and each side searches all the games where it is to move in one
batched search per move.

    matches/<name>/
      tournament.json        settings and the players (run, checkpoint step, parameters)
      games/part-N.parquet   the match games of pair N (kind = match), a games table
      pairs/pair-N.json      pair N's win/draw/loss counts per seat order; written last
      results.csv            one row per ordered pair: first, second, wins, draws, losses

A pair is finished when its `pairs/pair-N.json` exists (written atomically after its games), so
an interrupted tournament reruns only unfinished pairs; pair N's games are numbered
N * games_per_pair + k, so nothing is recorded twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import runs
from .errors import UserError

REFERENCE_KINDS = ("random", "mcts", "perfect")


@dataclass(frozen=True)
class PlayerSpec:
    name: str
    kind: str                      # agent | random | mcts | perfect
    checkpoint: str = ""           # for agents
    run: str = ""
    step: int = -1
    params: int = 0
    simulations: int = 0           # for mcts references


def agents_from_runs(run_dirs: Sequence[Path], checkpoints: str = "final") -> list[PlayerSpec]:
    from .train import checkpoint_paths, load_checkpoint
    out = []
    for rd in run_dirs:
        for c in checkpoint_paths(rd, checkpoints):
            meta = load_checkpoint(c)
            run = meta.get("run") or Path(rd).name
            out.append(PlayerSpec(f"{run}@{meta['step']}", "agent", str(c), run, int(meta["step"]),
                                  int(meta["params"])))
    return out


def reference_players(spec: str) -> list[PlayerSpec]:
    """`random,mcts-100,mcts-300,perfect` -> reference player specs."""
    out = []
    for item in [x.strip() for x in spec.split(",") if x.strip()]:
        if item == "random":
            out.append(PlayerSpec("random", "random"))
        elif item == "perfect":
            out.append(PlayerSpec("perfect", "perfect"))
        elif item.startswith("mcts-") and item[5:].isdigit():
            out.append(PlayerSpec(item, "mcts", simulations=int(item[5:])))
        else:
            raise UserError(f"unknown reference player '{item}' (random, mcts-N, perfect)")
    return out


def _make_player(p: PlayerSpec, engine, simulations: int, temperature: float, seed: int, cache: dict,
                 device: str = "cpu"):
    from .arena import AgentPlayer, PerfectPlayer, RandomPlayer, SpielMCTSPlayer
    if p.kind == "agent":
        if p.checkpoint not in cache:
            from .train import load_model
            cache[p.checkpoint] = load_model(p.checkpoint)
        model, meta = cache[p.checkpoint]
        return AgentPlayer(model, engine, simulations, meta["config"]["c_puct"], temperature, seed, name=p.name,
                           device=device)
    if p.kind == "random":
        return RandomPlayer(seed, name=p.name)
    if p.kind == "mcts":
        pl = SpielMCTSPlayer(engine.spiel_game, p.simulations, seed)
        pl.name = p.name
        return pl
    if p.kind == "perfect":
        pl = PerfectPlayer(engine.spiel_game, seed)
        pl.name = p.name
        return pl
    raise UserError(f"unknown player kind {p.kind!r}")


def _play_pair(args) -> int:
    out, idx, a, b, settings, device = args
    import torch
    torch.set_num_threads(1)
    from .arena import play_match
    from .engines import SpielEngine
    engine = SpielEngine(settings["game"])
    cache: dict = {}
    seed = settings["seed"] * 1_000_003 + idx
    pa_ = _make_player(PlayerSpec(**a), engine, settings["simulations"], settings["temperature"], seed, cache, device)
    pb_ = _make_player(PlayerSpec(**b), engine, settings["simulations"], settings["temperature"], seed + 1, cache,
                       device)
    res = play_match(engine, pa_, pb_, settings["games_per_pair"])
    n = settings["games_per_pair"]
    rows = []
    for k, g in enumerate(res.games):
        rows.append({"game_id": idx * n + k, "run": Path(out).name, "kind": "match", "game": settings["game"],
                     "net_step": -1, "net_step_first": -1, "seat0": g["seat0"], "seat1": g["seat1"],
                     "temperature": settings["temperature"], "temperature_drop": 10**6,
                     "simulations": settings["simulations"], "actions": g["actions"],
                     "return0": float(g["return0"]), "return1": float(g["return1"]), "length": g["length"]})
    runs.write_games_part(Path(out), idx, rows, settings["game"])
    counts: dict[tuple[str, str], list[int]] = {}
    for g in res.games:
        c = counts.setdefault((g["seat0"], g["seat1"]), [0, 0, 0])
        c[0 if g["return0"] > 0 else 1 if g["return0"] == 0 else 2] += 1
    runs.atomic_write_json(Path(out) / "pairs" / f"pair-{idx:05d}.json", {
        "pair": idx, "players": [a["name"], b["name"]],
        "results": [{"first": f, "second": s, "wins": c[0], "draws": c[1], "losses": c[2]}
                    for (f, s), c in sorted(counts.items())]})
    return idx


def tournament(players: list[PlayerSpec], out: Path, games_per_pair: int = 800, temperature: float = 0.25,
               simulations: int = 300, seed: int = 0, workers: int | None = None,
               progress: bool = True, game: str | None = None, device: str = "cpu") -> pd.DataFrame:
    """Play (or finish) a round-robin; returns the results table (one row per ordered pair).
    Agents search on `device` (one process holds a GPU: on CUDA the pairs run one at a time)."""
    from .engines import SpielEngine
    if len({p.name for p in players}) != len(players):
        raise UserError("two players share a name; give runs distinct directory names")
    if len(players) < 2:
        raise UserError("a tournament needs at least two players")
    if games_per_pair < 2 or games_per_pair % 2:
        raise UserError("--games-per-pair must be an even number >= 2 (seats alternate)")
    if temperature < 0 or simulations < 1:
        raise UserError("--temperature must be >= 0 and --sims >= 1")
    if game is None:
        from .train import load_checkpoint
        agents = [p for p in players if p.kind == "agent"]
        if not agents:
            raise UserError("a tournament needs at least one agent (a run directory)")
        games = {load_checkpoint(p.checkpoint)["config"]["game"] for p in agents}
        if len(games) > 1:
            raise UserError(f"the runs play different games ({', '.join(sorted(games))})")
        game = games.pop()
    SpielEngine(game)
    out = Path(out)
    settings = {"game": game, "games_per_pair": games_per_pair, "temperature": temperature,
                "simulations": simulations, "seed": seed, "noise": False}
    with runs.RunLock(out):
        manifest = out / "tournament.json"
        record = {"settings": settings, "players": [vars(p) for p in players]}
        if manifest.exists():
            have = json.loads(manifest.read_text())
            if have["settings"] != settings or have["players"] != record["players"]:
                raise UserError(f"{out} holds a tournament with other settings or players; choose another --out")
        runs.atomic_write_json(manifest, record)
        pairs = [(i, j) for i in range(len(players)) for j in range(i + 1, len(players))]
        todo = [(str(out), k, vars(players[i]), vars(players[j]), settings, device)
                for k, (i, j) in enumerate(pairs) if not (out / "pairs" / f"pair-{k:05d}.json").exists()]
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(pairs), initial=len(pairs) - len(todo), desc="tournament", unit="pair")
        workers = 1 if device != "cpu" else (workers or os.cpu_count() or 1)
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_play_pair, todo):
                    if bar is not None:
                        bar.update(1)
        else:
            for t in todo:
                _play_pair(t)
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        table = read_results(out)
        runs.atomic_write_text(out / "results.csv", table.to_csv(index=False))
    return table


def read_results(path: Path) -> pd.DataFrame:
    path = Path(path)
    files = sorted((path / "pairs").glob("pair-*.json"))
    if not (path / "tournament.json").exists() or not files:
        raise UserError(f"{path}: not a tournament directory (no tournament.json / pairs)")
    rows = []
    for f in files:
        try:
            rows += json.loads(f.read_text())["results"]
        except (json.JSONDecodeError, KeyError):
            raise UserError(f"{f}: damaged pair result; delete it to replay that pair") from None
    return pd.DataFrame(rows, columns=["first", "second", "wins", "draws", "losses"])


def read_players(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((Path(path) / "tournament.json").read_text())
    return {p["name"]: p for p in data["players"]}
