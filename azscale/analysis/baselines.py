"""Uniformly random play, recorded like any other games.

Games are written in parts of `part_size` games; part i is fully determined by (seed, i), so an
interrupted run is resumed by writing only the parts that are missing, and the same seed always
gives the same table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import parallel, runs
from ..checks import SEED_MAX, number
from ..engines.spiel import load_spiel_game
from ..errors import UserError


def random_part(game: str, seed: int, index: int, n: int, first_id: int, run: str) -> list[runs.GameRecord]:
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
        rows.append(runs.GameRecord(run=run, kind="random", game=game, actions=acts, return0=float(r[0]),
                                    return1=float(r[1]), game_id=first_id + i, seat0="random", seat1="random",
                                    temperature=float("inf"), temperature_drop=0, simulations=0))
    return rows


def _play_part(args):
    """A worker: play one part and return it as a games table; the parent writes it (under the
    lock), so a worker that outlives a killed parent writes nothing."""
    from ..procs import die_with_parent
    die_with_parent()
    game, seed, index, n, first_id, run = args
    return index, runs.games_table(random_part(game, seed, index, n, first_id, run), game)


CHECKED_GAMES = 4          # the games of a kept part replayed from (seed, part) to prove it is this table's


def _part_done(path: Path, run: str, first: int, n: int, game: str, seed: int, index: int) -> bool:
    """A part counts as done only if it holds exactly the games it should: this table's name,
    game and kind random, ids first..first+n-1, and its first games the very ones (seed, index)
    plays (a part of another seed or game, say another sweep's `random/`, differs there); anything
    else there is refused, never counted or deleted."""
    if not path.exists():
        return False
    t = runs.read_games(path)
    ok = (t.num_rows == n and t["game_id"].to_pylist() == list(range(first, first + n))
          and set(t["kind"].to_pylist()) == {"random"} and set(t["run"].to_pylist()) == {run}
          and set(t["game"].to_pylist()) == {game})
    if ok:
        k = min(n, CHECKED_GAMES)
        ok = t["actions"].slice(0, k).to_pylist() == [g.actions for g in random_part(game, seed, index, k, first, run)]
    if not ok:
        raise UserError(f"{path}: does not hold this table's random games {first}..{first + n - 1}; "
                        f"foreign games are never counted (move the file away to replay the part)")
    return True


def random_games(game: str, games: int, seed: int, out: Path, part_size: int = 50_000,
                 workers: int | None = None, progress: bool = True) -> int:
    """Write `games` uniformly random games to `out/games/part-*.parquet`; returns games written
    by this call (parts already present are checked and kept)."""
    load_spiel_game(game)  # refuse unsupported games before any work
    games = number(games, "--games", lo=1, hi=10**10, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    part_size = number(part_size, "part size", lo=1, hi=10**8, integer=True)
    out = Path(out)
    runs.claim_dir(out, "random-games")
    with runs.RunLock(out):
        runs.claim_dir(out, "random-games")
        manifest = out / "random.json"
        want = {"game": game, "games": games, "seed": seed, "part_size": part_size}
        record = {"kind": "random-games", "name": out.name, "id": runs.new_identity(), **want}
        if manifest.exists():
            have = runs.read_manifest(out, "random-games", tuple(want))
            if any(have.get(k) != v for k, v in want.items()):
                diff = ", ".join(f"{k} (has {have.get(k)!r}, asked {v!r})" for k, v in want.items() if have.get(k) != v)
                raise UserError(f"{out} holds random games with different settings: {diff}")
            record["name"] = have.get("name") or record["name"]
            record["id"] = have.get("id") or record["id"]
        runs.atomic_write_json(manifest, record)
        run = record["name"]
        todo = []
        for i, first in enumerate(range(0, games, part_size)):
            n = min(part_size, games - first)
            if not _part_done(out / "games" / f"part-{i:06d}.parquet", run, first, n, game, seed, i):
                todo.append((game, seed, i, n, first, run))
        workers = workers or os.cpu_count() or 1
        bar = parallel.Bar(f"random {game}", "game", sum(t[3] for t in todo), size=lambda r: r[1].num_rows) \
            if progress else None
        done = 0
        for index, table in parallel.imap_unordered(_play_part, todo, workers, "random games", bar=bar):
            runs.atomic_write_table(out / "games" / f"part-{index:06d}.parquet", table)
            done += table.num_rows
    return done
