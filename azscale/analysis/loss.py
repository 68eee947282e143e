"""Per-state loss by frequency rank (PAPER.md sections 5 and 7).

For each checkpoint's network and each distinct state seen at least `min_count` times:
value loss (z - v)^2, with v the network's raw value (no search) and z the target, both in the
frame of the player to move in that state (`FRAME`):
- `trainset`: the mean final outcome of the state in the chosen games (the states table's
  player-0 outcome converted with its `player` column);
- `solver`: the game-theoretic value from an oracle (bitbully or the exact memo solver), which
  also gives a target policy, uniform over the optimal moves, for a policy cross-entropy.
States are ranked by their frequency in a states table: each run's own self-play by default, or
one table pooled over all runs (`pooled`) so that sizes are compared on the same states.
Curves are smoothed with a Gaussian kernel in log10(rank) (sigma 0.15 decades by default);
seeds of one size are combined by the geometric mean of their smoothed curves, with the
seeds' minimum and maximum as a band. Losses are not frequency-weighted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from .. import runs
from ..errors import UserError
from ..config import analysis_settings, check_late_turn
from .endgame import applicability
from .sizeboot import check_resampling, percentile, size_bootstrap
from .states import build_states, outcome_side_to_move

FRAME = "side_to_move"
GRID_STEP = 0.05            # decades between points of a smoothed curve
SAVE_EVERY_S = 60.0         # how often `solve` writes its label cache while it works


def histories_for(states: pd.DataFrame, games: pa.Table) -> list[list[int]]:
    """Action prefixes that rebuild each state from its example (run, game id, turn)."""
    lookup = {(r, g): a for r, g, a in zip(games["run"].to_pylist(), games["game_id"].to_pylist(),
                                            games["actions"].to_pylist())}
    out = []
    for run, gid, turn in zip(states["example_run"], states["example_game"], states["example_turn"]):
        acts = lookup.get((run, int(gid)))
        if acts is None:
            raise UserError(f"game {gid} of run {run} is not in the games given; cannot rebuild its states")
        out.append(acts[:int(turn)])
    return out


def observe(engine, histories: list[list[int]]):
    states = [engine.replay(h) for h in histories]
    info = engine.info(states)
    if info.terminal.any():
        raise UserError("a state to evaluate is terminal; the states table is inconsistent with its games")
    return info


def predict(model: torch.nn.Module, obs: np.ndarray, legal: np.ndarray, batch: int = 4096):
    """Raw network values (side to move) and log-policies over legal moves, computed on the
    model's device in batches."""
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    vs, lps = [], []
    with torch.inference_mode():
        for i in range(0, len(obs), batch):
            logits, v = model(torch.from_numpy(obs[i:i + batch]).to(dev))
            mask = torch.from_numpy(legal[i:i + batch]).to(dev)
            lps.append(torch.log_softmax(logits.masked_fill(~mask, float("-inf")), 1).cpu().numpy())
            vs.append(v.cpu().numpy())
    if not vs:
        return np.zeros(0, np.float32), np.zeros((0, legal.shape[1]), np.float32)
    return np.concatenate(vs), np.concatenate(lps)


def optimal_policy_ce(logp: np.ndarray, best_mask: np.ndarray) -> np.ndarray:
    """Cross-entropy to the uniform distribution over optimal moves."""
    A = logp.shape[1]
    bits = ((best_mask.astype(np.uint64)[:, None] >> np.arange(A, dtype=np.uint64)) & np.uint64(1)).astype(bool)
    k = bits.sum(1)
    with np.errstate(invalid="ignore"):
        ce = -np.where(bits, logp, 0.0).sum(1) / np.maximum(k, 1)
    return np.where(k > 0, ce, np.nan)


def smooth_log_rank(ranks: np.ndarray, values: np.ndarray, sigma: float = 0.15,
                    step: float = GRID_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-kernel mean of `values` in log10(rank): returns (grid ranks, smoothed values)."""
    ok = np.isfinite(values)
    x, y = np.log10(ranks[ok].astype(float)), values[ok].astype(float)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0)
    grid = np.arange(np.floor(x.min() / step) * step, x.max() + 1e-9, step)
    # bin finely first so the kernel sum does not grow with the number of states
    fine = 0.005
    idx = np.round((x - grid[0]) / fine).astype(int)
    sums = np.bincount(idx, weights=y)
    cnts = np.bincount(idx).astype(float)
    centres = grid[0] + fine * np.arange(len(sums))
    keep = cnts > 0
    centres, sums, cnts = centres[keep], sums[keep], cnts[keep]
    w = np.exp(-0.5 * ((grid[:, None] - centres[None, :]) / sigma) ** 2)
    return 10 ** grid, (w @ sums) / (w @ cnts)


def frontier_rank(grid: np.ndarray, smoothed: np.ndarray, threshold: float) -> float:
    """Largest rank up to which the smoothed loss stays below `threshold` (0 if it starts above)."""
    above = np.flatnonzero(smoothed >= threshold)
    if len(above) == 0:
        return float(grid[-1]) if len(grid) else 0.0
    return float(grid[above[0] - 1]) if above[0] > 0 else 0.0


def loss_analysis(run_dirs: Sequence[Path], out: Path, target: str = "trainset", checkpoints: str = "final",
                  window: str = "last70", min_count: int = 10, pooled: bool = False,
                  cache_dir: Path | None = None, sigma: float = 0.15, late_turn: float | None = None,
                  frontier_threshold: float = 0.1, workers: int = 1, book: bool = True,
                  progress: bool = True, replicates: int = 2000, seed: int = 0,
                  device: str = "cpu") -> dict[str, Any]:
    """`late_turn` defaults to the game's `[analysis]` setting (games/<game>.toml)."""
    from ..engines import SpielEngine
    from ..oracles import LabelCache, label_histories, make_oracle
    from ..checkpoints import checkpoint_paths, load_model

    if target not in ("trainset", "solver"):
        raise UserError(f"unknown target '{target}' (trainset or solver)")
    if min_count < 1:
        raise UserError("--min-count must be >= 1")
    if late_turn is not None:
        late_turn = check_late_turn(late_turn)
    check_resampling(replicates, seed)
    run_dirs = runs.distinct_sources([Path(r) for r in run_dirs], "run")
    runs.claim_dir(Path(out), "loss")
    if cache_dir is not None:
        runs.claim_dir(Path(cache_dir), "labels")
    games = {r: runs.read_games(r) for r in run_dirs}
    owner: dict[str, Path] = {}
    for r, t in games.items():
        for n in set(t["run"].to_pylist()):
            if n in owner:
                raise UserError(f"{owner[n]} and {r} both hold games of run '{n}' (the same run twice, a copy, "
                                f"or two runs with one name); each run counts once")
            owner[n] = r
    game_names = {n for t in games.values() for n in set(t["game"].to_pylist())}
    if len(game_names) != 1:
        raise UserError(f"the runs play different games ({', '.join(sorted(game_names))})")
    game = game_names.pop()
    settings = analysis_settings(game)
    late_turn = settings["late_turn"] if late_turn is None else late_turn
    endgame = applicability(game, late_turn, settings["shoulder_moves"])
    engine = SpielEngine(game)
    cache = None
    if target == "solver":
        oracle_name = make_oracle(engine.spiel_game, book).name
        cache = LabelCache(cache_dir or Path(out) / "labels", game, oracle_name)

    def table_for(tables: list[pa.Table]) -> tuple[pd.DataFrame, pa.Table]:
        g = pa.concat_tables(tables)
        st, _ = build_states(g, window=window, kinds=["selfplay"], workers=workers)
        df = st.to_pandas()
        df = df[df["count"] >= min_count].reset_index(drop=True)
        df["example_run"] = df["example_run"].astype(str)
        return df, g

    state_sets: dict[Path, tuple[pd.DataFrame, pa.Table]] = {}
    if pooled:
        shared = table_for(list(games.values()))
        state_sets = {r: shared for r in run_dirs}
    else:
        state_sets = {r: table_for([games[r]]) for r in run_dirs}

    rows = []
    prepared: dict[int, dict[str, Any]] = {}
    for rd in run_dirs:
        df, g = state_sets[rd]
        if len(df) == 0:
            raise UserError(f"{rd}: no state was seen {min_count} or more times in the selected games")
        if id(df) not in prepared:
            hist = histories_for(df, g)
            info = observe(engine, hist)
            tgt = {"player": info.player}
            if target == "trainset":
                tgt["z"] = outcome_side_to_move(df["outcome_p0"].to_numpy(), info.player).astype(np.float32)
            else:
                keys = df["key"].astype("uint64").tolist()
                todo = [i for i, k in enumerate(keys) if k not in cache.data]
                labels = label_histories(game, [hist[i] for i in todo], workers, book, progress)
                for i, lab in zip(todo, labels):
                    cache.add(keys[i], lab)
                if todo:
                    cache.save()
                lk = cache.lookup(keys)
                tgt.update(z=lk["value"], best_mask=lk["best_mask"], nodes=lk["nodes"], seconds=lk["seconds"])
            prepared[id(df)] = {"info": info, **tgt}
        prep = prepared[id(df)]
        for ck in checkpoint_paths(rd, checkpoints):
            model, meta = load_model(ck, device)
            v, logp = predict(model, prep["info"].obs, prep["info"].legal)
            part = pd.DataFrame({
                "run": meta.get("run") or rd.name, "step": meta["step"], "params": meta["params"],
                "rank": df["rank"].to_numpy(), "key": df["key"].to_numpy(), "count": df["count"].to_numpy(),
                "mean_turn": df["mean_turn"].to_numpy(), "late": df["mean_turn"].to_numpy() >= late_turn,
                "player": prep["player"], "target": prep["z"], "value": v,
                "loss_value": (prep["z"] - v) ** 2})
            if target == "solver":
                part["policy_ce"] = optimal_policy_ce(logp, prep["best_mask"])
                part["solver_nodes"] = prep["nodes"]
                part["solver_seconds"] = prep["seconds"]
            rows.append(part)
    per_state = pd.concat(rows, ignore_index=True)
    return _write_outputs(per_state, Path(out), target, game, sigma, late_turn, frontier_threshold,
                          {"window": window, "min_count": min_count, "pooled": pooled, "checkpoints": checkpoints,
                           "runs": [str(r) for r in run_dirs]}, endgame, replicates, seed)


def _curves(per_state: pd.DataFrame, sigma: float, frontier_threshold: float, split: bool = True):
    curves, fronts = [], []
    subsets = (("all", None), ("early", ~per_state["late"]), ("late", per_state["late"])) if split else (("all", None),)
    for subset, mask in subsets:
        d = per_state if mask is None else per_state[mask]
        for (run, step, params), g in d.groupby(["run", "step", "params"]):
            # ranks within the subset keep the states' ranks in the full table
            grid, sm = smooth_log_rank(g["rank"].to_numpy(), g["loss_value"].to_numpy(), sigma)
            for r, val in zip(grid, sm):
                curves.append({"subset": subset, "run": run, "step": step, "params": params, "rank": r, "loss": val})
            fronts.append({"subset": subset, "run": run, "step": step, "params": params,
                           "frontier_rank": frontier_rank(grid, sm, frontier_threshold)})
    c = pd.DataFrame(curves)
    if len(c):
        c["rank"] = c["rank"].round(6)
        agg = c.groupby(["subset", "params", "step", "rank"])["loss"]
        combined = pd.DataFrame({"loss_geomean": agg.apply(lambda x: float(np.exp(np.log(np.maximum(x, 1e-12)).mean()))),
                                 "loss_min": agg.min(), "loss_max": agg.max(), "seeds": agg.count()}).reset_index()
    else:
        combined = pd.DataFrame(columns=["subset", "params", "step", "rank", "loss_geomean", "loss_min", "loss_max", "seeds"])
    return c, combined, pd.DataFrame(fronts)


def _write_outputs(per_state, out, target, game, sigma, late_turn, frontier_threshold, selection, endgame,
                   replicates=2000, seed=0):
    out.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_table(out / "per_state.parquet", pa.Table.from_pandas(per_state, preserve_index=False)
                            .replace_schema_metadata({"azscale.table": "state_loss", "game": game,
                                                      "target": target, "frame": FRAME}))
    split = endgame["applicable"]
    curves, combined, fronts = _curves(per_state, sigma, frontier_threshold, split)
    runs.atomic_write_text(out / "curves.csv", combined.to_csv(index=False))
    runs.atomic_write_text(out / "curves_per_run.csv", curves.to_csv(index=False))
    runs.atomic_write_text(out / "frontier.csv", fronts.to_csv(index=False))
    trend = _rank_trend(combined)
    if split:
        early_late = early_late_summary(per_state, selection["pooled"], reps=replicates, seed=seed)
    else:
        early_late = {"applicable": False, "reason": endgame["reason"]}
    early_late.update(late_turn=late_turn, max_game_length=endgame["max_game_length"])
    caption = (f"{target} target, {FRAME} frame; games {selection['window']}, states seen ≥ {selection['min_count']} "
               f"times, {'pooled states (same for every size)' if selection['pooled'] else 'each run on its own states'}")
    figs = _figures(combined, fronts, per_state, out, target, frontier_threshold, late_turn, caption, split)
    summary = {"game": game, "target": target, "frame": FRAME, "selection": selection,
               "smoothing": {"kernel": "gaussian in log10(rank)", "sigma_decades": sigma},
               "late_turn": late_turn, "frontier_threshold": frontier_threshold,
               "states_per_run": per_state.groupby("run")["key"].nunique().to_dict(),
               "loss_rises_with_rank": trend, "early_late": early_late, "figures": figs}
    runs.atomic_write_json(out / "loss.json", summary)
    return summary


def early_late_summary(per_state: pd.DataFrame, pooled: bool, reps: int = 2000, seed: int = 0,
                       level: float = 0.95, state_reps: int = 200) -> dict[str, Any]:
    """Per size: mean value loss over early and over late states (each distinct state once) at
    each run's last checkpoint; seeds combined by the geometric mean. Intervals: a hierarchical
    bootstrap of the log loss: states resampled (the same draw for every run when the states
    are pooled, so sizes stay paired on the same states), then seeds within sizes
    (sizeboot.py's t-scaled pooled scheme). With pooled states, `pairs` holds every larger
    size's loss as a ratio to every smaller one's, with its interval."""
    rng = np.random.default_rng(seed)
    last = per_state[per_state["step"] == per_state.groupby("run")["step"].transform("max")]
    run_names = sorted(last["run"].unique())
    params = last.groupby("run")["params"].first()
    keysets = {r: frozenset(g["key"].tolist()) for r, g in last.groupby("run")}
    shared = pooled and len(set(keysets.values())) == 1
    out: dict[str, Any] = {"applicable": True, "pooled": bool(shared),
                           "statistic": "mean value loss over distinct states at each run's last checkpoint; seeds "
                                        "combined by the geometric mean"}
    if pooled and not shared:
        out["pooled_note"] = "the runs were not evaluated on the same states; sizes are not paired"
    by: dict[str, dict[str, Any]] = {}
    boots = {}
    for subset, flag in (("early", False), ("late", True)):
        d = last[last["late"] == flag]
        if shared:
            mat = d.pivot(index="run", columns="key", values="loss_value").reindex(run_names).to_numpy(np.float64)
            n = mat.shape[1]
            point = mat.mean(1) if n else np.full(len(run_names), np.nan)
            if n:
                w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(state_reps)]) / n
                rep = w @ mat.T                                   # [state_reps, runs]
        else:
            point, cols = [], []
            for r in run_names:
                v = d.loc[d["run"] == r, "loss_value"].to_numpy(np.float64)
                point.append(v.mean() if len(v) else np.nan)
                cols.append(np.array([v[rng.integers(0, len(v), len(v))].mean() for _ in range(state_reps)])
                            if len(v) else np.full(state_reps, np.nan))
            point, rep, n = np.array(point), np.stack(cols, 1), None
        counts = d.groupby("run")["key"].nunique().reindex(run_names).fillna(0).astype(int)
        ok = np.isfinite(point)
        boot = None
        if ok.any():
            sizes = pd.DataFrame({"params": params.reindex(run_names).to_numpy()[ok],
                                  "v": np.log(np.maximum(point[ok], 1e-12))})
            boot = size_bootstrap(sizes, np.log(np.maximum(rep[:, ok], 1e-12)), reps=reps, seed=seed, column="v")
            boots[subset] = boot
        for p in sorted(params.unique()):
            e = by.setdefault(str(int(p)), {"seeds": int((params == p).sum())})
            e[f"{subset}_states"] = int(counts[params.index[params == p]].mean())
            k = np.flatnonzero(boot.params == p) if boot is not None else []
            if len(k):
                e[f"{subset}_loss"] = float(np.exp(boot.mean[k[0]]))
                e[f"{subset}_ci"] = [float(np.exp(x)) for x in percentile(boot.samples[:, k[0]], level)]
                e[f"{subset}_seeds"] = int(boot.seeds[k[0]])
            else:
                e[f"{subset}_loss"], e[f"{subset}_ci"], e[f"{subset}_seeds"] = None, None, 0
    out["by_params"] = by
    any_boot = next(iter(boots.values()), None)
    out["interval"] = {"level": level, "replicates": reps, "state_replicates": state_reps,
                       "description": ("states resampled (one draw shared by every run: paired on the same states) "
                                       if shared else "states resampled within each run, ")
                                      + "then seeds within sizes on log loss"
                                      + (f" ({any_boot.describe().split(': ', 1)[1].split('; ', 1)[1]})"
                                         if any_boot is not None else "")}
    pairs: dict[str, Any] = {}
    if shared and boots:
        all_p = sorted(int(p) for p in params.unique())
        for i, a in enumerate(all_p):
            for b in all_p[i + 1:]:
                pr: dict[str, Any] = {"params_from": a, "params_to": b}
                for subset in ("early", "late"):
                    bt = boots.get(subset)
                    ia = np.flatnonzero(bt.params == a) if bt is not None else []
                    ib = np.flatnonzero(bt.params == b) if bt is not None else []
                    if len(ia) and len(ib):
                        dd = bt.samples[:, ib[0]] - bt.samples[:, ia[0]]
                        pr[f"{subset}_ratio"] = float(np.exp(bt.mean[ib[0]] - bt.mean[ia[0]]))
                        pr[f"{subset}_ci"] = [float(np.exp(x)) for x in percentile(dd, level)]
                    else:
                        pr[f"{subset}_ratio"], pr[f"{subset}_ci"] = None, [None, None]
                pairs[f"{a}:{b}"] = pr
    out["pairs"] = pairs
    return out


def _rank_trend(combined: pd.DataFrame) -> dict[str, Any]:
    """Per size at its last step: Spearman correlation of smoothed loss with rank (all states),
    and the loss at the first and last grid point."""
    from scipy.stats import spearmanr
    out = {}
    allc = combined[combined["subset"] == "all"]
    for params, g in allc.groupby("params"):
        g = g[g["step"] == g["step"].max()].sort_values("rank")
        if len(g) >= 3:
            rho = float(spearmanr(g["rank"], g["loss_geomean"]).statistic)
            out[str(int(params))] = {"spearman_rho": rho, "loss_top": float(g["loss_geomean"].iloc[0]),
                                     "loss_tail": float(g["loss_geomean"].iloc[-1]), "rises": rho > 0}
    return out


def _figures(combined, fronts, per_state, out, target, thr, late_turn, caption="", split=True) -> list[str]:
    from .plotting import pyplot, save as save_figure, size_colours
    plt = pyplot()

    figs = []
    sizes = sorted(combined["params"].unique())
    colour = size_colours(sizes)

    def panel(ax, subset, title):
        d = combined[combined["subset"] == subset]
        for p in sizes:
            g = d[d["params"] == p]
            g = g[g["step"] == g["step"].max()].sort_values("rank")
            if g.empty:
                continue
            c = colour[p]
            ax.loglog(g["rank"], g["loss_geomean"], color=c, label=f"{int(p):,} params")
            if g["seeds"].max() > 1:
                ax.fill_between(g["rank"], g["loss_min"], g["loss_max"], color=c, alpha=0.15)
        ax.set_xlabel("state rank (by frequency)")
        ax.set_ylabel(f"value loss ({target} target)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)

    def save(fig, stem):
        figs.extend(save_figure(fig, out / stem, names=True))

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    panel(ax, "all", "value loss vs rank, final checkpoints" + (f"\n{caption}" if caption else ""))
    ax.title.set_fontsize(7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, "loss_vs_rank")
    if split:
        # the paper's Fig. 7: all, early and late states
        names = {"all": "all states", "early": f"early states (mean turn < {late_turn:g})",
                 "late": f"late states (mean turn ≥ {late_turn:g})"}
        have = [k for k in names if (combined["subset"] == k).any()]      # never an empty panel
        gone = [names[k] for k in names if k not in have]
        fig, axes = plt.subplots(1, len(have), figsize=(5 * len(have), 4.4), sharey=True, squeeze=False)
        for ax, k in zip(axes[0], have):
            panel(ax, k, names[k])
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"value loss vs rank, final checkpoints; {caption}"
                     + (f"\nno {' and no '.join(gone)} kept (none seen often enough)" if gone else ""), fontsize=8)
        fig.tight_layout()
        save(fig, "loss_early_late")
        # the paper's Fig. 8: early and late loss across checkpoints, per size
        last = per_state.groupby(["run", "params", "step", "late"])["loss_value"].mean().reset_index()
        parts = [(flag, name) for flag, name in ((False, f"early states (mean turn < {late_turn:g})"),
                                                 (True, f"late states (mean turn ≥ {late_turn:g})"))
                 if (last["late"] == flag).any()]
        if last["step"].nunique() > 1 and parts:
            fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4.2), sharey=True, squeeze=False)
            axes = axes[0]
            for ax, (flag, name) in zip(axes, parts):
                d = last[last["late"] == flag]
                for p in sizes:
                    g = d[d["params"] == p]
                    if g.empty:
                        continue
                    gm = g.groupby("step")["loss_value"].apply(lambda x: float(np.exp(np.log(np.maximum(x, 1e-12)).mean())))
                    ax.plot(gm.index.to_numpy().clip(1), gm.to_numpy(), "o-", ms=3, color=colour[p],
                            label=f"{int(p):,} params")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel("learner step (checkpoint)")
                ax.set_ylabel(f"mean value loss ({target} target)")
                ax.set_title(name, fontsize=9)
                ax.grid(True, which="major", alpha=0.3)
            axes[0].legend(fontsize=7)
            fig.suptitle("early vs late loss across checkpoints (mean over states, geometric mean over seeds); "
                         f"{caption}", fontsize=8)
            fig.tight_layout()
            save(fig, "loss_early_late_vs_step")
    f = fronts[fronts["subset"] == "all"]
    if f["step"].nunique() > 1:
        from .plotting import run_styles, seed_of
        fig, ax = plt.subplots(figsize=(6, 4))
        style = run_styles((r, p, seed_of(r)) for r, p in f[["run", "params"]].drop_duplicates().itertuples(index=False))
        for run, st in style.items():         # smallest to largest; one line style per seed
            g = f[f["run"] == run].sort_values("step")
            ax.plot(g["step"].clip(lower=1), g["frontier_rank"].clip(lower=1), ms=3, color=st["color"], ls=st["ls"],
                    marker=st["marker"], label=st["label"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learner step")
        ax.set_ylabel(f"learned frontier (rank where loss reaches {thr:g})")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        save(fig, "frontier_vs_step")
    if "solver_seconds" in per_state:
        one = per_state.drop_duplicates("key")
        grid, secs = smooth_log_rank(one["rank"].to_numpy(), one["solver_seconds"].to_numpy())
        _, nodes = smooth_log_rank(one["rank"].to_numpy(), one["solver_nodes"].to_numpy().astype(float))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.loglog(grid, np.maximum(secs, 1e-7), label="seconds")
        ax2 = ax.twinx()
        ax2.loglog(grid, np.maximum(nodes, 1e-3), color="C1", label="nodes")
        ax.set_xlabel("state rank")
        ax.set_ylabel("solver seconds per state (smoothed)")
        ax2.set_ylabel("solver nodes per state (smoothed)")
        ax.set_title("solver effort vs rank")
        fig.tight_layout()
        save(fig, "solver_effort")
    return figs


def solve_states(states_path: Path, out: Path, min_count: int = 1, limit: int | None = None,
                 workers: int = 1, book: bool = True, progress: bool = True) -> dict[str, Any]:
    """Label the states of a states table (from `azscale zipf`) into a cache directory."""
    import pyarrow.parquet as pq

    from ..engines.spiel import load_spiel_game
    from ..oracles import LabelCache, label_histories, make_oracle
    from .states import STATES_TABLE, table_meta
    try:
        st = pq.read_table(states_path)
    except Exception:
        raise UserError(f"{states_path}: not a readable Parquet file") from None
    try:
        meta = table_meta(st)
    except ValueError:
        raise UserError(f"{states_path}: damaged states table (its selection is not readable)") from None
    if meta.get("azscale.table") != STATES_TABLE:
        raise UserError(f"{states_path}: not an azscale states table")
    need = ("key", "count", "rank", "example_run", "example_game", "example_turn")
    if not isinstance(meta.get("game"), str) or not isinstance(meta.get("selection"), dict) \
            or any(c not in st.column_names for c in need):
        raise UserError(f"{states_path}: damaged states table (game, selection or columns missing)")
    game = meta["game"]
    runs.claim_dir(Path(out), "labels")
    sources = meta["selection"].get("sources") or []
    if not sources:
        raise UserError(f"{states_path}: the table does not say which games it came from (rebuild it with azscale zipf)")
    df = st.to_pandas()
    df = df[df["count"] >= min_count].sort_values("rank")
    if limit:
        df = df.head(limit)
    df["example_run"] = df["example_run"].astype(str)
    cache = LabelCache(out, game, make_oracle(load_spiel_game(game), book).name)
    df = df[[k not in cache.data for k in df["key"].astype("uint64").tolist()]]
    t0 = time.perf_counter()
    if len(df):
        games = pa.concat_tables([runs.read_games(s) for s in sources])
        hist = histories_for(df, games)
        keys = df["key"].astype("uint64").tolist()
        last_save = [time.perf_counter()]

        def keep(start, labels):            # save every minute, so a killed solve keeps its work
            for k, lab in zip(keys[start:start + len(labels)], labels):
                cache.add(k, lab)
            if time.perf_counter() - last_save[0] > SAVE_EVERY_S:
                cache.save()
                last_save[0] = time.perf_counter()

        label_histories(game, hist, workers, book, progress, on_part=keep)
        cache.save()
    return {"solved": int(len(df)), "cached": len(cache.data), "seconds": time.perf_counter() - t0,
            "cache": str(cache.path)}
