"""Runs, sweeps and their tables as pandas objects, for notebooks and scripts.

    import azscale
    sweep = azscale.load_sweep("sweeps/c4")      # one row per run: size, seed, progress
    m = azscale.load_metrics("sweeps/c4")        # one row per learner step of every run
    g = azscale.load_games("sweeps/c4/runs/connect_four-w16-s0", window="last70")
    st = azscale.load_states("sweeps/c4", boards=20)    # the pooled states table, top 20 drawn
    elo = azscale.load_elo("sweeps/c4")
    loss = azscale.load_loss("sweeps/c4")         # per state, size and checkpoint

Everything is read through the same readers the commands use (`runs`: the one rule for how far
a run is, guarded reads, one-line refusals of foreign or damaged files); nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from . import checkpoints as ck
from . import runs
from .errors import UserError


def load_run(path: str | Path) -> pd.Series:
    """One run: name, id, game, family, width, depth, seed, exact parameter count, steps asked and
    done (`checkpoints.run_status`), finished, games, states, wall seconds, and every setting
    (`setting.<name>`)."""
    path = Path(path)
    cfg = ck.read_run_config(path)
    st = ck.run_status(path)
    m = ck.read_metrics(path)[:st.done]
    s = cfg["settings"]
    last = m[-1] if m else {}
    row: dict[str, Any] = {
        "run": cfg["run"], "run_id": cfg.get("run_id"), "game": s.get("game"), "family": s.get("family"),
        "width": s.get("width"), "depth": s.get("depth"), "seed": s.get("seed"), "params": cfg["params"],
        "steps": st.steps, "steps_done": st.done, "finished": st.finished,
        "games": last.get("games_total", 0), "states": last.get("states_total", 0),
        "wall_seconds": last.get("wall_seconds", 0.0), "engine": cfg.get("engine"), "path": str(path)}
    row.update({f"setting.{k}": v for k, v in s.items()})
    return pd.Series(row, name=cfg["run"])


def _sweep_runs(path: Path) -> list[Path]:
    runs.read_manifest(path, "sweep")
    found = ck.runs_under(path / "runs")
    if not found:
        raise UserError(f"{path}: no training runs yet")
    return found


def load_sweep(path: str | Path) -> pd.DataFrame:
    """One row per run of a sweep (as `load_run`), smallest to largest, then by seed. `attrs`:
    `settings` (sweep.json), `analysis_done` (steps.json), `path`."""
    path = Path(path)
    rows = pd.DataFrame([load_run(p) for p in _sweep_runs(path)])
    rows = rows.sort_values(["params", "seed", "run"], ignore_index=True)
    rows.attrs = {"settings": runs.read_manifest(path, "sweep"), "analysis_done": sorted(runs.read_sweep_steps(path)[0]),
                  "path": str(path)}
    return rows


def _is_sweep(path: Path) -> bool:
    return (path / "sweep.json").is_file()


def load_metrics(path: str | Path) -> pd.DataFrame:
    """One row per recorded learner step (metrics.jsonl) of a run, or of every run of a sweep,
    with the run's name, parameters, width and seed beside the numbers."""
    path = Path(path)
    frames = []
    for rd in (_sweep_runs(path) if _is_sweep(path) else [path]):
        cfg = ck.read_run_config(rd)
        m = pd.DataFrame(ck.recorded_metrics(rd))
        if m.empty:
            continue
        s = cfg["settings"]
        frames.append(m.assign(run=cfg["run"], params=cfg["params"], width=s.get("width"), seed=s.get("seed"),
                               family=s.get("family")))
    if not frames:
        return pd.DataFrame(columns=["run", "params", "width", "seed", "family", "step"])
    out = pd.concat(frames, ignore_index=True)
    first = ["run", "params", "width", "seed", "family", "step"]
    return out[first + [c for c in out.columns if c not in first]]


def load_games(path: str | Path, window: str = "all", kinds: str | Sequence[str] = ()) -> pd.DataFrame:
    """The games table of a run, a tournament, a random-games table or a games folder, or of
    every run of a sweep: one row per game (actions as lists). `window` as for `azscale zipf`
    (all, last70, steps:A-B), `kinds` to keep (selfplay, match, random: one as a string, or a
    list; an unknown kind is refused)."""
    import pyarrow as pa

    from .analysis.states import select_games
    path = Path(path)
    tables = [runs.read_games(p) for p in (_sweep_runs(path) if _is_sweep(path) else [path])]
    sel = [select_games(t, window, kinds, None) for t in tables]
    return pa.concat_tables(sel).to_pandas() if sel else pd.DataFrame()


def _states_file(path: Path) -> Path | None:
    if path.is_file():
        return path
    for p in (path / "states.parquet", path / "analysis" / "zipf" / "states.parquet"):
        if p.is_file():
            return p
    return None


def load_states(path: str | Path, window: str = "last70", boards: int = 0) -> pd.DataFrame:
    """A states table (one row per distinct state: rank, key, count, mean turn, outcome, player
    to move, one game that reached it). From a `states.parquet`, a zipf analysis, or a sweep (its
    pooled table, analysis/zipf); from a run or games table it is built by replaying the games of
    `window`. `boards=K` adds `board`, the text of each of the K most frequent states, rebuilt by
    replaying the game that reached it. `attrs`: the table's metadata (game, key scheme, frame,
    selection)."""
    from .analysis.states import build_states, read_states_table, table_meta
    path = Path(path)
    f = _states_file(path)
    if f is not None:
        t, meta = read_states_table(f)
    elif ck.is_run(path) or (path / "games").is_dir():
        t, _ = build_states(runs.read_games(path), window=window, sources=[str(path)])
        meta = table_meta(t)
    else:
        raise UserError(f"{path}: no states table here (a states.parquet, a zipf analysis, a sweep, or a run)")
    df = t.to_pandas()
    if boards:
        sources = _sweep_runs(path) if _is_sweep(path) else \
            [Path(s) for s in meta.get("selection", {}).get("sources", [])] or [path]
        df["board"] = None
        df.loc[df.index[:boards], "board"] = _boards(meta["game"], df.head(boards), sources)
    df.attrs = meta
    return df


def _boards(game: str, top: pd.DataFrame, sources: list[Path]) -> list[str | None]:
    """The text of each state in `top`, rebuilt from the game (run, id) that reached it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .engines.spiel import load_spiel_game
    want = {(str(r), int(g)) for r, g in zip(top["example_run"], top["example_game"])}
    ids = pa.array(sorted({g for _, g in want}), pa.int64())
    acts: dict[tuple[str, int], list[int]] = {}
    for src in sources:
        if not Path(src).exists():
            continue
        t = runs.read_games(src)
        t = t.filter(pc.is_in(t["game_id"].cast(pa.int64()), ids))
        for r, g, a in zip(t["run"].to_pylist(), t["game_id"].to_pylist(), t["actions"].to_pylist()):
            if (r, int(g)) in want:
                acts[(r, int(g))] = a
    g = load_spiel_game(game)
    out: list[str | None] = []
    for r, gid, turn in zip(top["example_run"], top["example_game"], top["example_turn"]):
        a = acts.get((str(r), int(gid)))
        if a is None:
            out.append(None)
            continue
        s = g.new_initial_state()
        for x in a[:int(turn)]:
            s.apply_action(int(x))
        out.append(str(s))
    return out


def _analysis(path: Path, step: str, name: str) -> Path:
    p = path / "analysis" / step / name if _is_sweep(path) else path / name
    if not p.is_file():
        raise UserError(f"{p}: not there (has the {step} step run?)")
    return p


def load_elo(path: str | Path) -> pd.DataFrame:
    """The Elo table (player, kind, run, step, params, Elo and its interval) of a sweep or of
    an `azscale elo` directory; a reference player's kind is one of the players' registry
    (`players.PLAYERS`)."""
    from .analysis.elo_files import read_elo_table
    return read_elo_table(_analysis(Path(path), "elo", "elo.csv"))


def load_loss(path: str | Path, step: str = "loss-pooled") -> pd.DataFrame:
    """Per-state value loss (one row per run, checkpoint and state: rank, key, count, mean turn,
    late, target, the network's value and the loss) of a sweep's loss step (`loss-pooled`:
    every size on the same states; `loss`, `loss-solver`) or of an `azscale loss` directory.
    `attrs`: its loss.json."""
    import pyarrow.parquet as pq
    path = Path(path)
    f = _analysis(path, step, "per_state.parquet")
    df = pq.read_table(f).to_pandas()
    lj = f.parent / "loss.json"
    df.attrs = json.loads(lj.read_text()) if lj.is_file() else {}
    return df
