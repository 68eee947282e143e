"""Uniformly random play, recorded like any other games.

Games are written in parts of `part_size` games; part i is fully determined by (seed, i), so an
interrupted run is resumed by writing only the parts that are missing, and the same seed always
gives the same table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import runs
from ..engines.spiel import load_spiel_game


def random_part(game: str, seed: int, index: int, n: int, first_id: int, run: str) -> list[dict]:
    g = load_spiel_game(game)
    rng = np.random.default_rng([seed, 2718, index])
    rows = []
    for i in range(n):
        s = g.new_initial_state()
        acts = []
        while not s.is_terminal():
            legal = s.legal_actions()
            a = legal[int(rng.integers(len(legal)))]
            s.apply_action(a)
            acts.append(a)
        r = s.returns()
        rows.append({"game_id": first_id + i, "run": run, "kind": "random", "game": game,
                     "net_step": -1, "net_step_first": -1, "seat0": "random", "seat1": "random",
                     "temperature": float("inf"), "temperature_drop": 0, "simulations": 0,
                     "actions": acts, "return0": float(r[0]), "return1": float(r[1]),
                     "length": len(acts)})
    return rows


def _write_part(args) -> int:
    game, seed, index, n, first_id, run, out = args
    runs.write_games_part(Path(out), index, random_part(game, seed, index, n, first_id, run), game)
    return n


def random_games(game: str, games: int, seed: int, out: Path, part_size: int = 50_000,
                 workers: int | None = None, progress: bool = True) -> int:
    """Write `games` uniformly random games to `out/games/part-*.parquet`; returns games written
    by this call (parts already present are kept)."""
    load_spiel_game(game)  # refuse unsupported games before any work
    out = Path(out)
    run = out.name
    with runs.RunLock(out):
        manifest = out / "random.json"
        want = {"game": game, "games": games, "seed": seed, "part_size": part_size}
        if manifest.exists():
            import json
            have = json.loads(manifest.read_text())
            if have != want:
                from ..errors import UserError
                diff = ", ".join(f"{k} (has {have.get(k)!r}, asked {v!r})" for k, v in want.items() if have.get(k) != v)
                raise UserError(f"{out} holds random games with different settings: {diff}")
        runs.atomic_write_json(manifest, want)
        todo = []
        for i, first in enumerate(range(0, games, part_size)):
            n = min(part_size, games - first)
            if not (out / "games" / f"part-{i:06d}.parquet").exists():
                todo.append((game, seed, i, n, first, run, str(out)))
        workers = workers or os.cpu_count() or 1
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=sum(t[3] for t in todo), desc=f"random {game}", unit="game")
        done = 0
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            with mp.get_context("spawn").Pool(workers) as pool:
                for n in pool.imap_unordered(_write_part, todo):
                    done += n
                    if bar is not None:
                        bar.update(n)
        else:
            for t in todo:
                done += _write_part(t)
                if bar is not None:
                    bar.update(t[3])
        if bar is not None:
            bar.close()
    return done
