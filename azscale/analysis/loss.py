"""Per-state loss by frequency rank (PAPER.md sections 5 and 7): the maths.

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

`loss_report.py` is the `loss` command around it: it reads the runs, writes the tables and
draws the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import UserError
from .sizeboot import percentile, size_bootstrap

FRAME = "side_to_move"
GRID_STEP = 0.05            # decades between points of a smoothed curve


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


def mask_bits(best_mask: np.ndarray, actions: int) -> np.ndarray:
    """Optimal-move bit masks as booleans [states, actions]."""
    return ((best_mask.astype(np.uint64)[:, None] >> np.arange(actions, dtype=np.uint64)) & np.uint64(1)).astype(bool)


def last_checkpoints(per_state: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last checkpoint."""
    return per_state[per_state["step"] == per_state.groupby("run")["step"].transform("max")]


def optimal_policy_ce(logp: np.ndarray, best_mask: np.ndarray) -> np.ndarray:
    """Cross-entropy to the uniform distribution over optimal moves."""
    A = logp.shape[1]
    bits = mask_bits(best_mask, A)
    k = bits.sum(1)
    with np.errstate(invalid="ignore"):
        ce = -np.where(bits, logp, 0.0).sum(1) / np.maximum(k, 1)
    return np.where(k > 0, ce, np.nan)


def state_losses(model: torch.nn.Module, states: pd.DataFrame, target: dict[str, Any], late_turn: float,
                 **ids: Any) -> pd.DataFrame:
    """One network's loss on every state of `states` (a states table's rows), one row each after
    the `ids` columns (run, step, params): value loss against `target["z"]` (side to move) and,
    for a perfect-play target (`best_mask`), the cross-entropy to the optimal moves and the
    solver's effort. `target["info"]` holds the states' observations and legal moves."""
    v, logp = predict(model, target["info"].obs, target["info"].legal)
    part = pd.DataFrame({
        **ids, "rank": states["rank"].to_numpy(), "key": states["key"].to_numpy(), "count": states["count"].to_numpy(),
        "mean_turn": states["mean_turn"].to_numpy(), "late": states["mean_turn"].to_numpy() >= late_turn,
        "player": target["player"], "target": target["z"], "value": v,
        "loss_value": (target["z"] - v) ** 2})
    if "obs_group" in target:
        part["obs_group"] = target["obs_group"]
    if "best_mask" in target:
        part["policy_ce"] = optimal_policy_ce(logp, target["best_mask"])
        part["move_optimal"], part["optimal_mass"], part["decisive"], part["chance_optimal"] = move_columns(
            logp, target["info"].legal, target["best_mask"])
        part["solver_nodes"] = target["nodes"]
        part["solver_seconds"] = target["seconds"]
    return part


def observation_groups(obs: np.ndarray) -> np.ndarray:
    """One id per state for its observation, the network's whole input: states with one id are
    one input to every network, whatever else tells them apart (on OpenSpiel's oware the
    observation is the seeds and scores, without the player to move)."""
    if len(obs) == 0:
        return np.zeros(0, np.int64)
    _, inverse = np.unique(np.ascontiguousarray(obs.reshape(len(obs), -1)), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def observation_floor(per_state: pd.DataFrame) -> dict[str, Any]:
    """Per size, for early, late and all states at each run's last checkpoint: the share of
    states whose observation another state of the same subset shares, and the *floor*, the least
    mean value loss any network that sees only the observation can reach on those states (one
    value per input: the mean target of the states sharing it; the floor is their spread around
    it). A loss near its floor says the input, not the network's size, limits it. Seeds are
    combined as the loss is (`early_late_summary`): the geometric mean over the runs whose loss
    is finite, so a size's floor never exceeds its loss (shares: the arithmetic mean)."""
    if "obs_group" not in per_state.columns:
        return {"applicable": False, "reason": "per-state table written before observations were grouped"}
    last = last_checkpoints(per_state)
    by: dict[str, dict[str, Any]] = {}
    for p, g in last.groupby("params"):
        e: dict[str, Any] = {"seeds": int(g["run"].nunique())}
        for subset, rows in (("early", g[~g["late"].astype(bool)]), ("late", g[g["late"].astype(bool)]), ("all", g)):
            shared, floor = [], []
            for _, d in rows.groupby("run"):
                if not np.isfinite(d["loss_value"].mean()):
                    continue                      # left out of the loss too
                grp = d.groupby("obs_group")["target"]
                shared.append(float((grp.transform("size") > 1).mean()))
                floor.append(float(((d["target"] - grp.transform("mean")) ** 2).mean()))
            e[f"{subset}_states"] = int(rows.groupby("run")["key"].nunique().mean()) if len(rows) else 0
            e[f"{subset}_shared"] = float(np.mean(shared)) if shared else None
            e[f"{subset}_floor"] = (None if not floor else 0.0 if min(floor) <= 0
                                    else float(np.exp(np.mean(np.log(floor)))))
        by[str(int(p))] = e
    return {"applicable": True, "by_params": by,
            "statistic": "shared: share of the states whose network input (the observation) another state of the "
                         "same subset has too (mean over seeds); floor: the least mean value loss over these states "
                         "that any network seeing only the observation can reach (the spread of the targets among "
                         "states with one input), seeds combined by the geometric mean as the loss is; each run's "
                         "last checkpoint, runs with a finite loss"}


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


def curves(per_state: pd.DataFrame, sigma: float, frontier_threshold: float, split: bool = True):
    """Smoothed loss curves per run and checkpoint (all states, and early and late ones when
    `split`), the same combined over the seeds of each size (geometric mean, min, max), and the
    learned frontier of each curve."""
    points, fronts = [], []
    subsets = (("all", None), ("early", ~per_state["late"]), ("late", per_state["late"])) if split else (("all", None),)
    for subset, mask in subsets:
        d = per_state if mask is None else per_state[mask]
        for (run, step, params), g in d.groupby(["run", "step", "params"]):
            # ranks within the subset keep the states' ranks in the full table
            grid, sm = smooth_log_rank(g["rank"].to_numpy(), g["loss_value"].to_numpy(), sigma)
            for r, val in zip(grid, sm):
                points.append({"subset": subset, "run": run, "step": step, "params": params, "rank": r, "loss": val})
            fronts.append({"subset": subset, "run": run, "step": step, "params": params,
                           "frontier_rank": frontier_rank(grid, sm, frontier_threshold)})
    c = pd.DataFrame(points)
    if len(c):
        c["rank"] = c["rank"].round(6)
        agg = c.groupby(["subset", "params", "step", "rank"])["loss"]
        combined = pd.DataFrame({"loss_geomean": agg.apply(lambda x: float(np.exp(np.log(np.maximum(x, 1e-12)).mean()))),
                                 "loss_min": agg.min(), "loss_max": agg.max(), "seeds": agg.count()}).reset_index()
    else:
        combined = pd.DataFrame(columns=["subset", "params", "step", "rank", "loss_geomean", "loss_min", "loss_max", "seeds"])
    return c, combined, pd.DataFrame(fronts)


def early_late_summary(per_state: pd.DataFrame, pooled: bool, reps: int = 2000, seed: int = 0,
                       level: float = 0.95, state_reps: int = 200) -> dict[str, Any]:
    """Per size: mean value loss over early and over late states (each distinct state once) at
    each run's last checkpoint; seeds combined by the geometric mean. Intervals: a hierarchical
    bootstrap of the log loss: states resampled (the same draw for every run when the states
    are pooled, so sizes stay paired on the same states), then seeds within sizes
    (sizeboot.py's t-scaled pooled scheme). With pooled states, `pairs` holds every larger
    size's loss as a ratio to every smaller one's, with its interval."""
    return _by_size(per_state, pooled, "loss_value", "loss", log=True, reps=reps, seed=seed, level=level,
                    state_reps=state_reps,
                    statistic="mean value loss over distinct states at each run's last checkpoint; seeds "
                              "combined by the geometric mean")


def move_accuracy_summary(per_state: pd.DataFrame, pooled: bool, reps: int = 2000, seed: int = 0,
                          level: float = 0.95, state_reps: int = 200) -> dict[str, Any]:
    """Exact move accuracy per size, early and late: the share of *decisive* states (some legal
    move gives the exact value away) where the network's own most likely move keeps it (ties
    among its top moves split evenly), at each run's last checkpoint; seeds combined by the
    arithmetic mean. The same hierarchical bootstrap as the loss, on the accuracy itself;
    with pooled states `pairs` holds every larger size's accuracy minus every smaller one's.
    Not applicable without a perfect-play target (`move_optimal` in the table)."""
    if "move_optimal" not in per_state.columns:
        return {"applicable": False, "reason": "needs exact values (--target solver)"}
    out = _by_size(per_state, pooled, "move_optimal", "accuracy", log=False, reps=reps, seed=seed, level=level,
                   state_reps=state_reps, where="decisive",
                   statistic="share of decisive states (some legal move gives the exact value away) where the "
                             "network's most likely move (no search; ties split) keeps the exact value, at each "
                             "run's last checkpoint; seeds combined by the arithmetic mean")
    if "chance_optimal" in per_state.columns:       # what a uniformly random move scores on the same states
        last = last_checkpoints(per_state)
        last = last[last["decisive"].astype(bool)]
        for p, e in out["by_params"].items():
            for subset, flag in (("early", False), ("late", True)):
                c = last[(last["params"] == int(p)) & (last["late"] == flag)].groupby("run")["chance_optimal"].mean()
                e[f"{subset}_chance"] = float(c.mean()) if len(c) else None
        out["chance"] = "the accuracy of a uniformly random legal move on the same states (mean over seeds)"
    return out


def move_columns(logp: np.ndarray, legal: np.ndarray, best_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray, np.ndarray]:
    """Per state, against a perfect-play target (`best_mask`: the value-keeping moves as bits):
    `move_optimal`, the share of the network's most likely moves (ties split evenly) that keep
    the value; `optimal_mass`, the policy's probability on such moves (a move drawn from the
    policy keeps the value this often); `decisive`, whether some legal move gives the value away
    (elsewhere every move is optimal and the accuracy says nothing); `chance`, the accuracy of a
    uniformly random legal move (the baseline). NaN / False where the target has no optimal move
    (unsolved)."""
    n, A = logp.shape
    bits = mask_bits(best_mask, A)
    known = bits.any(1)
    top = np.isclose(logp, logp.max(1, keepdims=True), rtol=0, atol=1e-6) & legal if n else legal
    with np.errstate(invalid="ignore", divide="ignore"):
        optimal = (top & bits).sum(1) / np.maximum(top.sum(1), 1)
        mass = np.where(bits, np.exp(logp), 0.0).sum(1)
        chance = (legal & bits).sum(1) / np.maximum(legal.sum(1), 1)
    decisive = known & (legal & ~bits).any(1)
    # a policy with no finite top move (a diverged network's NaN logits) is not scored as wrong
    scored = known & top.any(1)
    return np.where(scored, optimal, np.nan), np.where(scored, mass, np.nan), decisive, np.where(known, chance, np.nan)


def _by_size(per_state: pd.DataFrame, pooled: bool, column: str, name: str, *, log: bool, reps: int, seed: int,
             level: float, state_reps: int, statistic: str, where: str | None = None) -> dict[str, Any]:
    """Early and late means of `column` per size at each run's last checkpoint (rows where
    `where` holds), with the hierarchical bootstrap (states, then seeds within sizes) on the
    log scale (`log`: seeds combined by the geometric mean, pairs as ratios) or as it is
    (arithmetic mean, pairs as differences)."""
    rng = np.random.default_rng(seed)
    fwd = (lambda x: np.log(np.maximum(x, 1e-12))) if log else (lambda x: x)
    back = np.exp if log else (lambda x: x)
    last = last_checkpoints(per_state)
    run_names = sorted(per_state["run"].unique())
    params = per_state.groupby("run")["params"].first().reindex(run_names)
    # paired when every run was evaluated on the same states (`where` is a property of the state)
    keysets = {r: frozenset(g["key"].tolist()) for r, g in last.groupby("run")}
    shared = pooled and len(set(keysets.values())) == 1
    if where is not None:
        last = last[last[where].astype(bool)]
    out: dict[str, Any] = {"applicable": True, "pooled": bool(shared), "statistic": statistic}
    if where is not None:
        out["states"] = f"only rows where {where} holds"
    if pooled and not shared:
        out["pooled_note"] = "the runs were not evaluated on the same states; sizes are not paired"
    by: dict[str, dict[str, Any]] = {}
    boots = {}
    for subset, flag in (("early", False), ("late", True)):
        d = last[last["late"] == flag]
        if shared:
            mat = d.pivot(index="run", columns="key", values=column).reindex(run_names).to_numpy(np.float64)
            n = mat.shape[1]
            point = mat.mean(1) if n else np.full(len(run_names), np.nan)
            if n:
                w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(state_reps)]) / n
                rep = w @ mat.T                                   # [state_reps, runs]
            else:
                rep = np.full((state_reps, len(run_names)), np.nan)
        else:
            point, cols = [], []
            for r in run_names:
                v = d.loc[d["run"] == r, column].to_numpy(np.float64)
                point.append(v.mean() if len(v) else np.nan)
                cols.append(np.array([v[rng.integers(0, len(v), len(v))].mean() for _ in range(state_reps)])
                            if len(v) else np.full(state_reps, np.nan))
            point, rep = np.array(point), np.stack(cols, 1)
        counts = d.groupby("run")["key"].nunique().reindex(run_names).fillna(0).astype(int)
        ok = np.isfinite(point)
        boot = None
        if ok.any():
            sizes = pd.DataFrame({"params": params.to_numpy()[ok], "v": fwd(point[ok])})
            boot = size_bootstrap(sizes, fwd(rep[:, ok]), reps=reps, seed=seed, column="v")
            boots[subset] = boot
        for p in sorted(params.unique()):
            e = by.setdefault(str(int(p)), {"seeds": int((params == p).sum())})
            e[f"{subset}_states"] = int(counts[params.index[params == p]].mean())
            k = np.flatnonzero(boot.params == p) if boot is not None else []
            if len(k):
                e[f"{subset}_{name}"] = float(back(boot.mean[k[0]]))
                e[f"{subset}_ci"] = [float(back(x)) for x in percentile(boot.samples[:, k[0]], level)]
                e[f"{subset}_seeds"] = int(boot.seeds[k[0]])
            else:
                e[f"{subset}_{name}"], e[f"{subset}_ci"], e[f"{subset}_seeds"] = None, None, 0
    out["by_params"] = by
    any_boot = next(iter(boots.values()), None)
    out["interval"] = {"level": level, "replicates": reps, "state_replicates": state_reps,
                       "description": ("states resampled (one draw shared by every run: paired on the same states) "
                                       if shared else "states resampled within each run, ")
                                      + f"then seeds within sizes on {'log ' if log else ''}{name}"
                                      + (f" ({any_boot.describe().split(': ', 1)[1].split('; ', 1)[1]})"
                                         if any_boot is not None else "")}
    pairs: dict[str, Any] = {}
    kind = "ratio" if log else "diff"
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
                        pr[f"{subset}_{kind}"] = float(back(bt.mean[ib[0]] - bt.mean[ia[0]]))
                        pr[f"{subset}_ci"] = [float(back(x)) for x in percentile(dd, level)]
                    else:
                        pr[f"{subset}_{kind}"], pr[f"{subset}_ci"] = None, [None, None]
                pairs[f"{a}:{b}"] = pr
    out["pairs"] = pairs
    return out


def checkpoint_means(per_state: pd.DataFrame) -> list[dict[str, Any]]:
    """Per run and checkpoint: mean value loss over early and over late states, and (with exact
    values) the move accuracy over the decisive ones, each distinct state once: the learning
    curves against the truth that the paper's Fig. 8 draws, as numbers."""
    rows = []
    for (run, step, params), g in per_state.groupby(["run", "step", "params"]):
        r: dict[str, Any] = {"run": run, "step": int(step), "params": int(params)}
        for subset, flag in (("early", False), ("late", True)):
            d = g[g["late"] == flag]
            r[f"{subset}_states"] = int(len(d))
            r[f"{subset}_loss"] = float(d["loss_value"].mean()) if len(d) else None
            if "move_optimal" in d.columns:
                dd = d[d["decisive"].astype(bool)]
                r[f"{subset}_decisive"] = int(len(dd))
                r[f"{subset}_accuracy"] = float(dd["move_optimal"].mean()) if len(dd) else None
                if "chance_optimal" in dd.columns:
                    r[f"{subset}_chance"] = float(dd["chance_optimal"].mean()) if len(dd) else None
        rows.append(r)
    return rows


def rank_trend(combined: pd.DataFrame) -> dict[str, Any]:
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
