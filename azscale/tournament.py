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
first_game_id + N * games_per_pair + k (first_game_id 0 unless a temperature study sets it), so
nothing is recorded twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from . import parallel, runs
from .arena import PlayerSpec, agent_spec, make_player, play_match
from .checks import SEED_MAX, number
from .errors import UserError


def agents_from_runs(run_dirs: Sequence[Path], checkpoints: str = "final") -> list[PlayerSpec]:
    from .checkpoints import checkpoint_paths, load_checkpoint
    out = []
    for rd in runs.distinct_sources(run_dirs, "run"):
        for c in checkpoint_paths(rd, checkpoints):
            meta = load_checkpoint(c)
            out.append(agent_spec(c, meta, meta.get("run") or Path(rd).name))
    return out


def checkpoint_dirs(root: Path, run_dirs: Sequence[Path], k: int) -> list[Path]:
    """Where `checkpoint_tournaments` keeps each run's round-robin of `k` checkpoints:
    `root/checkpoints-<k>/<run>` (another `k` chooses other checkpoints, so it gets its own)."""
    return [Path(root) / f"checkpoints-{k}" / Path(rd).name for rd in run_dirs]


def checkpoint_tournaments(run_dirs: Sequence[Path], root: Path, k: int, **settings: Any) -> list[Path]:
    """The paper's second kind of round-robin (PAPER.md section 6): within each run, `k` of its
    checkpoints (`checkpoints.spread_checkpoints`: log-spaced, the first trained one and the
    final one included) play every pair; one tournament directory per run, resumable per pair.
    `settings` are `tournament`'s (games per pair, temperature, simulations, ...). Returns the
    directories, for one Elo fit with the final checkpoints' tournament (a final checkpoint has
    the same name in both, so the two kinds of game are tied together)."""
    from .checkpoints import load_checkpoint, spread_checkpoints
    dirs = checkpoint_dirs(root, run_dirs, k)
    for rd, out in zip(runs.distinct_sources(run_dirs, "run"), dirs):
        agents = []
        for c in spread_checkpoints(rd, k):
            meta = load_checkpoint(c)
            agents.append(agent_spec(c, meta, meta.get("run") or Path(rd).name))
        if len(agents) < 2:
            raise UserError(f"{rd}: fewer than two trained checkpoints; no within-run round-robin")
        # named apart from the run, so its match games never pass for the run's own games
        tournament(agents, out, label=f"checkpoints of {Path(rd).name}", name=f"checkpoints-{k}-{Path(rd).name}",
                   **settings)
    return dirs


def game_of(agents: Sequence[PlayerSpec]) -> str:
    """The game the agents' checkpoints play; agents of different games are refused."""
    from .checkpoints import load_checkpoint
    games = {load_checkpoint(p.checkpoint)["config"].get("game") for p in agents}
    if len(games) > 1:
        raise UserError(f"the runs play different games ({', '.join(sorted(map(str, games)))})")
    return games.pop()


def _play_pair(args) -> tuple[int, list[runs.GameRecord], dict[str, Any]]:
    """Play one pair in a worker; return its games and counts. The parent, which holds the
    tournament's lock, writes them: a worker never writes, so one that outlives a killed parent
    (it dies with it, `procs.die_with_parent`) cannot leave a late result."""
    from .procs import die_with_parent
    die_with_parent()
    name, idx, a, b, settings, device = args
    import torch
    torch.set_num_threads(1)
    from .nets import flush_subnormals
    flush_subnormals()
    from .engines import SpielEngine
    engine = SpielEngine(settings["game"])
    seed = settings["seed"] * 1_000_003 + idx
    play = {"simulations": settings["simulations"], "temperature": settings["temperature"], "device": device,
            "models": {}}
    res = play_match(engine, make_player(PlayerSpec(**a), engine, seed, **play),
                     make_player(PlayerSpec(**b), engine, seed + 1, **play), settings["games_per_pair"])
    n = settings["games_per_pair"]
    first = settings.get("first_game_id", 0)
    rows = [runs.GameRecord(run=name, kind="match", game=settings["game"], actions=g["actions"],
                            return0=float(g["return0"]), return1=float(g["return1"]), game_id=first + idx * n + k,
                            seat0=g["seat0"], seat1=g["seat1"], temperature=settings["temperature"],
                            temperature_drop=10**6, simulations=settings["simulations"])
            for k, g in enumerate(res.games)]
    counts: dict[tuple[str, str], list[int]] = {}
    for g in res.games:
        c = counts.setdefault((g["seat0"], g["seat1"]), [0, 0, 0])
        c[0 if g["return0"] > 0 else 1 if g["return0"] == 0 else 2] += 1
    result = {"pair": idx, "players": [a["name"], b["name"]],
              "results": [{"first": f, "second": s, "wins": c[0], "draws": c[1], "losses": c[2]}
                          for (f, s), c in sorted(counts.items())]}
    return idx, rows, result


def _record_pair(out: Path, game: str, idx: int, rows: list[runs.GameRecord], result: dict[str, Any]) -> None:
    """Write a pair's games, then its result (which marks the pair finished); parent only."""
    runs.write_games_part(out, idx, rows, game)
    runs.atomic_write_json(runs.pair_file(out, idx), result)


def _pair_finished(out: Path, idx: int, a: PlayerSpec, b: PlayerSpec, n: int, first: int = 0) -> bool:
    """A pair is finished when its result exists; the result must name this pair and its players,
    and its games part must hold exactly the pair's games, or the directory is refused."""
    f = runs.pair_file(out, idx)
    if not f.exists():
        return False
    d = runs.read_pair(f)
    if d.get("pair") != idx or d.get("players") != [a.name, b.name]:
        raise UserError(f"{f}: the result of another pair or other players; this directory mixes tournaments")
    part = out / "games" / f"part-{idx:06d}.parquet"
    if not part.exists():
        raise UserError(f"{part} is missing although {f.name} says the pair finished; "
                        f"delete {f.name} to replay the pair")
    ids = runs.read_games(part)["game_id"].to_pylist()
    if ids != list(range(first + idx * n, first + idx * n + n)):
        raise UserError(f"{part}: holds other games than pair {idx}'s {n}; delete it and {f.name} to replay the pair")
    return True


def tournament(players: list[PlayerSpec], out: Path, *, games_per_pair: int = 800, temperature: float = 0.25,
               simulations: int = 300, seed: int = 0, workers: int | None = None,
               progress: bool = True, game: str | None = None, device: str = "cpu", first_game_id: int = 0,
               name: str | None = None, label: str = "tournament", grow: bool = False) -> pd.DataFrame:
    """Play (or finish) a round-robin; returns the results table (one row per ordered pair).
    Agents search on `device` (one process holds a GPU: on CUDA the pairs run one at a time).
    `first_game_id` numbers the games from there (so that several tournaments, e.g. one per
    temperature of a study, form one games table); `name` is the `run` written in the games
    table (default: the directory's name); `label` names the progress bar.

    `grow` (a sweep that gained runs): players may be added to a tournament that has begun;
    its pairs keep their numbers (and their recorded games), and the new pairs come after them."""
    from .engines import SpielEngine
    names = [p.name for p in players]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"two players are named '{dup}' (the same run twice, a copy of a run, or two runs "
                        f"with one name); each player must be distinct")
    if len(players) < 2:
        raise UserError("a tournament needs at least two players")
    games_per_pair = number(games_per_pair, "--games-per-pair", lo=2, hi=10_000_000, integer=True)
    if games_per_pair % 2:
        raise UserError("--games-per-pair must be an even number >= 2 (seats alternate)")
    temperature = number(temperature, "--temperature", lo=0, hi=1_000_000)
    simulations = number(simulations, "--sims", lo=1, hi=1_000_000, integer=True)
    seed = number(seed, "--seed", lo=0, hi=SEED_MAX, integer=True)
    if game is None:
        agents = [p for p in players if p.kind == "agent"]
        if not agents:
            raise UserError("a tournament needs at least one agent (a run directory)")
        game = game_of(agents)
    SpielEngine(game)
    out = Path(out)
    settings = {"game": game, "games_per_pair": games_per_pair, "temperature": temperature,
                "simulations": simulations, "seed": seed, "noise": False}
    first_game_id = number(first_game_id, "the first game id", lo=0, hi=2**62, integer=True)
    if first_game_id:                    # (absent when 0, so tournaments recorded before still match)
        settings["first_game_id"] = first_game_id
    runs.claim_dir(out, "tournament")
    with runs.RunLock(out):
        runs.claim_dir(out, "tournament")
        manifest = out / "tournament.json"
        record = {"kind": "tournament", "name": name or out.name, "id": runs.new_identity(), "settings": settings,
                  "players": [vars(p) for p in players]}
        by_name = {p.name: p for p in players}
        pairs = [(players[i].name, players[j].name) for i in range(len(players)) for j in range(i + 1, len(players))]
        if manifest.exists():
            have = runs.read_manifest(out, "tournament", ("settings", "players"))
            old = _identities(have["players"], manifest)
            new = {p.name: _identity(vars(p)) for p in players}
            same = old == new or (grow and all(new.get(n) == v for n, v in old.items()))
            if have["settings"] != settings or not same:
                raise UserError(f"{out} holds a tournament with other settings or players "
                                f"({_differences(have['settings'], settings, old, new, grow)}); choose another --out")
            record["name"] = have.get("name") or record["name"]
            record["id"] = have.get("id") or record["id"]
            # the pairs keep their numbers: those recorded first, then any new ones
            kept = _stored_pairs(have, manifest)
            pairs = kept + [p for p in pairs if p not in set(kept)]
        record["pairs"] = [list(p) for p in pairs]
        runs.atomic_write_json(manifest, record)
        todo = [(record["name"], k, vars(by_name[a]), vars(by_name[b]), settings, device)
                for k, (a, b) in enumerate(pairs)
                if not _pair_finished(out, k, by_name[a], by_name[b], games_per_pair, first_game_id)]
        bar = parallel.Bar(label, "pair", len(pairs), initial=len(pairs) - len(todo)) if progress else None
        workers = 1 if device != "cpu" else (workers or os.cpu_count() or 1)
        # local worker processes, or Ray tasks while a sweep runs on Ray (CPU pairs only: one
        # process holds a GPU with all of a pair's games)
        for idx, rows, result in parallel.imap_unordered(_play_pair, todo, workers, "tournament pairs", bar=bar,
                                                         ray=device == "cpu"):
            _record_pair(out, game, idx, rows, result)
        table = runs.read_results(out)
        runs.atomic_write_text(out / "results.csv", table.to_csv(index=False))
    return table


def _differences(had: Any, settings: dict[str, Any], old: dict[str, tuple], new: dict[str, tuple],
                 grow: bool) -> str:
    """What differs between a tournament's record and a rerun: each setting with both values,
    and the players missing, added or changed (by name)."""
    out = []
    had = had if isinstance(had, dict) else {}
    for k in sorted(set(had) | set(settings)):
        if had.get(k) != settings.get(k):
            out.append(f"{k}: has {had.get(k)!r}, asked {settings.get(k)!r}")
    gone = [n for n in old if n not in new]
    added = [] if grow else [n for n in new if n not in old]
    changed = [n for n in old if n in new and old[n] != new[n]]
    if gone:
        out.append(f"players not asked for now: {', '.join(gone)}")
    if added:
        out.append(f"new players: {', '.join(added)}")
    for n in changed:
        fields = ("name", "kind", "run", "step", "params", "simulations")
        diff = [f"{f} {a!r} -> {b!r}" for f, a, b in zip(fields, old[n], new[n]) if a != b]
        out.append(f"player {n} changed ({', '.join(diff)})")
    return "; ".join(out) or "the records differ"


def _identity(p: dict[str, Any]) -> tuple:
    """What makes a player the same player (its checkpoint's path may move with the sweep)."""
    return tuple(p.get(k) for k in ("name", "kind", "run", "step", "params", "simulations"))


def _identities(players: Any, manifest: Path) -> dict[str, tuple]:
    if not isinstance(players, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                                for p in players):
        raise UserError(f"{manifest}: damaged (players)")
    return {p["name"]: _identity(p) for p in players}


def _stored_pairs(have: dict[str, Any], manifest: Path) -> list[tuple[str, str]]:
    """The numbered pairs of a tournament.json; one written before pairs were stored numbers
    its players' pairs in order (i < j)."""
    if "pairs" in have:
        ps = have["pairs"]
        if not isinstance(ps, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                               for p in ps):
            raise UserError(f"{manifest}: damaged (pairs)")
        return [(a, b) for a, b in ps]
    names = [p["name"] for p in have["players"]]
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
