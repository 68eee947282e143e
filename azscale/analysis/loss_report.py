"""`azscale loss`: per-state value loss by frequency rank, for one or more runs (the maths
is in loss.py): it reads the runs' games and checkpoints, labels states with perfect play where
asked (`oracles.solve_into`, cached), and writes per_state.parquet, the curves, the frontier,
loss.json and the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import runs
from ..config import analysis_settings, check_late_turn
from ..errors import ThinData, UserError
from ..numfmt import num
from .endgame import applicability
from .loss import (FRAME, checkpoint_means, curves, early_late_summary, move_accuracy_summary, observation_floor,
                   observation_groups, observe, rank_trend, smooth_log_rank, state_losses)
from .saturation import exact_gain
from .sizeboot import check_resampling
from .states import build_states, histories_for, outcome_side_to_move


def loss_analysis(run_dirs: Sequence[Path], out: Path, target: str = "trainset", *, checkpoints: str = "final",
                  window: str = "last70", min_count: int = 10, pooled: bool = False,
                  cache_dir: Path | None = None, sigma: float = 0.15, late_turn: float | None = None,
                  frontier_threshold: float = 0.1, workers: int = 1, book: bool = True,
                  progress: bool = True, replicates: int = 2000, seed: int = 0,
                  device: str = "cpu", solver_budget: int | None = None) -> dict[str, Any]:
    """`late_turn` defaults to the game's `[analysis]` setting (games/<game>.toml); `solver_budget`:
    the small-oware solver's node budget per label (None: its default)."""
    from ..engines import SpielEngine
    from ..oracles import LabelCache, make_oracle, solve_into
    from ..checkpoints import checkpoint_paths, load_model

    if target not in ("trainset", "solver"):
        raise UserError(f"unknown target '{target}' (trainset or solver)")
    if min_count < 1:
        raise UserError("--min-count must be >= 1")
    if late_turn is not None:
        late_turn = check_late_turn(late_turn)
    check_resampling(replicates, seed)
    run_dirs = runs.distinct_sources([Path(r) for r in run_dirs], "run")
    for rd in run_dirs:                 # --checkpoints checked before anything is written or solved
        checkpoint_paths(rd, checkpoints)
    runs.claim_dir(Path(out), "loss")
    if cache_dir is not None:
        runs.claim_dir(Path(cache_dir), "labels")
    tables, game = runs.read_sources_games(run_dirs)
    games = dict(tables)
    settings = analysis_settings(game)
    late_turn = settings["late_turn"] if late_turn is None else late_turn
    endgame = applicability(game, late_turn, settings["shoulder_moves"])
    engine = SpielEngine(game)
    cache = None
    if target == "solver":
        oracle = make_oracle(engine.spiel_game, book, solver_budget)
        oracle_name = oracle.name
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
    unsolved: dict[str, dict[str, int]] = {}
    for rd in run_dirs:
        df, g = state_sets[rd]
        key0 = id(df)
        if len(df) == 0:
            raise ThinData(f"{rd}: no state was seen {min_count} or more times in the selected games")
        if id(df) not in prepared:
            hist = histories_for(df, g)
            lk = None
            if target == "solver":
                keys = df["key"].astype("uint64").tolist()
                solve_into(cache, game, keys, hist, workers=workers, book=book, progress=progress,
                           budget=solver_budget)
                lk = cache.lookup(keys)
                solved = np.isfinite(lk["value"])
                no_moves = solved & (lk["best_mask"] == 0)
                if not solved.all() or no_moves.any():   # a solver's node budget ran out: left out, counted
                    unsolved["pooled" if pooled else rd.name] = {
                        "unsolved": int((~solved).sum()), "states": int(len(solved)),
                        "unsolved_late": int((~solved & (df["mean_turn"].to_numpy() >= late_turn)).sum()),
                        "value_without_optimal_moves": int(no_moves.sum())}
                    df = df[solved].reset_index(drop=True)
                    hist = [h for h, ok in zip(hist, solved) if ok]
                    lk = {k: v[solved] for k, v in lk.items()}
                    if len(df) == 0:
                        raise ThinData(f"{rd}: the solver solved none of the states within its node budget")
            info = observe(engine, hist)
            tgt = {"player": info.player, "obs_group": observation_groups(info.obs)}
            if lk is None:
                tgt["z"] = outcome_side_to_move(df["outcome_p0"].to_numpy(), info.player).astype(np.float32)
            else:
                tgt.update(z=lk["value"], best_mask=lk["best_mask"], nodes=lk["nodes"], seconds=lk["seconds"])
            prepared[key0] = {"info": info, "df": df, **tgt}
        prep = prepared[key0]
        df = prep["df"]
        for ck in checkpoint_paths(rd, checkpoints):
            model, meta = load_model(ck, device)
            rows.append(state_losses(model, df, prep, late_turn, run=meta.get("run") or rd.name, step=meta["step"],
                                     params=meta["params"]))
    per_state = pd.concat(rows, ignore_index=True)
    return write_outputs(per_state, Path(out), target, game, sigma, late_turn, frontier_threshold,
                         {"window": window, "min_count": min_count, "pooled": pooled, "checkpoints": checkpoints,
                          "runs": [str(r) for r in run_dirs],
                          **({"solver": cache.solver, "unsolved": unsolved,
                              "solver_budget": getattr(oracle, "budget", None)} if cache is not None else {})},
                         endgame, replicates, seed)


def write_outputs(per_state, out, target, game, sigma, late_turn, frontier_threshold, selection, endgame,
                  replicates=2000, seed=0):
    """per_state.parquet, the smoothed curves (curves.csv, curves_per_run.csv), the frontier
    (frontier.csv), the figures and loss.json, from the per-state losses of every checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_table(out / "per_state.parquet", pa.Table.from_pandas(per_state, preserve_index=False)
                            .replace_schema_metadata({"azscale.table": "state_loss", "game": game,
                                                      "target": target, "frame": FRAME}))
    split = endgame["applicable"]
    per_run, combined, fronts = curves(per_state, sigma, frontier_threshold, split)
    runs.atomic_write_text(out / "curves.csv", combined.to_csv(index=False))
    runs.atomic_write_text(out / "curves_per_run.csv", per_run.to_csv(index=False))
    runs.atomic_write_text(out / "frontier.csv", fronts.to_csv(index=False))
    trend = rank_trend(combined)
    if split:
        early_late = early_late_summary(per_state, selection["pooled"], reps=replicates, seed=seed)
    else:
        early_late = {"applicable": False, "reason": endgame["reason"]}
    early_late.update(late_turn=late_turn, max_game_length=endgame["max_game_length"])
    if target != "solver":
        accuracy = {"applicable": False, "reason": "needs exact values (--target solver)"}
    elif split:
        accuracy = move_accuracy_summary(per_state, selection["pooled"], reps=replicates, seed=seed)
    else:
        accuracy = {"applicable": False, "reason": endgame["reason"]}
    accuracy.update(late_turn=late_turn)
    caption = (f"{target} target, {FRAME} frame; games {selection['window']}, states seen ≥ {selection['min_count']} "
               f"times, {'pooled states (same for every size)' if selection['pooled'] else 'each run on its own states'}")
    if selection.get("unsolved"):
        left = sum(u["unsolved"] for u in selection["unsolved"].values())
        total = sum(u["states"] for u in selection["unsolved"].values())
        caption += f"; {left:,} of {total:,} states left out, unsolved within the solver's node budget"
    figs = figures(combined, fronts, per_state, out, target, frontier_threshold, late_turn, caption, split)
    summary = {"game": game, "target": target, "frame": FRAME, "selection": selection,
               "smoothing": {"kernel": "gaussian in log10(rank)", "sigma_decades": sigma},
               "late_turn": late_turn, "frontier_threshold": frontier_threshold,
               "states_per_run": per_state.groupby("run")["key"].nunique().to_dict(),
               "loss_rises_with_rank": trend, "early_late": early_late, "move_accuracy": accuracy,
               "observation": observation_floor(per_state),
               "by_checkpoint": checkpoint_means(per_state) if split else [],
               "exact_gain": ({str(r): exact_gain(g, seed=seed) for r, g in per_state.groupby("run")}
                              if target == "solver" else {}),
               "figures": figs}
    runs.atomic_write_json(out / "loss.json", summary)
    return summary


def floor_lines(observation: dict[str, Any], split: bool = True) -> list[str]:
    """`observation_floor`'s result in words, one line per size; none where every state is its
    own input (the floor is then zero)."""
    by = observation.get("by_params") or {}
    if not observation.get("applicable") or not any((v.get("all_shared") or 0) > 0 for v in by.values()):
        return []
    subsets = ("early", "late") if split else ("all",)
    lines = []
    for p, v in sorted(by.items(), key=lambda kv: int(kv[0])):
        shared = ", ".join(f"{x} {100 * v[f'{x}_shared']:.1f}%" for x in subsets if v.get(f"{x}_shared") is not None)
        floor = ", ".join(f"{x} {num(v[f'{x}_floor'], 3)}" for x in subsets if v.get(f"{x}_floor") is not None)
        lines.append(f"{int(p):,} params: states sharing their observation with another (one input, one value): "
                     f"{shared}; least value loss any network can reach on the {' / '.join(subsets)} states: "
                     f"{floor}")
    return lines


def accuracy_vs_step(per_state, sizes, colour, late_turn, caption, plt, save) -> None:
    """Exact move accuracy on decisive states across checkpoints, early and late, per size (runs'
    accuracies averaged over seeds, the seeds' range shaded): the learning curves against the
    truth where matches cannot tell agents apart."""
    d = per_state[per_state["decisive"].astype(bool)]
    runs_ = d.groupby(["run", "params", "step", "late"])["move_optimal"].mean().reset_index()
    parts = [(flag, name) for flag, name in ((False, f"early decisive states (mean turn < {late_turn:g})"),
                                             (True, f"late decisive states (mean turn ≥ {late_turn:g})"))
             if (runs_["late"] == flag).any()]
    if not parts:
        return
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4.2), sharey=True, squeeze=False)
    for ax, (flag, name) in zip(axes[0], parts):
        dd = runs_[runs_["late"] == flag]
        for p in sizes:
            g = dd[dd["params"] == p].groupby("step")["move_optimal"]
            if not len(g):
                continue
            x = np.asarray(list(g.groups)).clip(1)
            ax.plot(x, g.mean().to_numpy(), "o-", ms=3, color=colour[p], label=f"{int(p):,} params")
            if g.count().max() > 1:
                ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), color=colour[p], alpha=0.15)
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("learner step (checkpoint)")
        ax.set_ylabel("exact move accuracy (network's top move)")
        ax.set_title(name, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("share of decisive states where the network's most likely move keeps the exact value "
                 f"(mean over seeds, range shaded)\n{caption}", fontsize=8)
    fig.tight_layout()
    save(fig, "accuracy_early_late_vs_step")


def figures(combined, fronts, per_state, out, target, thr, late_turn, caption="", split=True) -> list[str]:
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
        if "move_optimal" in per_state.columns and per_state["step"].nunique() > 1:
            accuracy_vs_step(per_state, sizes, colour, late_turn, caption, plt, save)
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
