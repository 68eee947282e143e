"""Two arms of one study side by side (`azscale compare`): a plain sweep and the same sizes and
seeds trained with something changed (issue 33: the replay intervention).

The head-to-head: at every width and seed, the final agent of the changed arm plays the final
agent of the plain arm (`games_per_pair` games, seats alternating). Its score s (win 1, draw
1/2) gives an Elo difference 400 log10(s / (1 - s)) per pair. Per size, the mean over seeds with a
hierarchical interval (`sizeboot.size_bootstrap`: games resampled within each pair, then seeds
within sizes, the pooled scheme); and ONE test across sizes, the slope of the Elo difference on
log10(parameters) with its interval from the same replicates. Under the paper's explanation of
inverse scaling (larger agents spend capacity on frequent end-game states), thinning out
frequent end-game states helps larger agents more: a positive slope. A slope whose interval
holds 0 is reported with the slope the design would find with 80% power (1.43 times the
interval's half-width, normal approximation), never as "no effect".

Side by side from each arm's own analysis (files its sweep wrote; "not available" with the
reason where one is missing): final-checkpoint Elo against the random player by size, the
verdict with its detectable fall, early and late value loss by size against exact values
(`analysis/loss-solver`), and the replay metrics of the last third of training by size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..runs import read_json
from .sizeboot import percentile, size_bootstrap

HEAD_TO_HEAD = "mean over seeds of 400 log10(s / (1 - s)), s = the changed arm's score against the plain arm"


def pair_elo(wins: np.ndarray, draws: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Elo difference of each pair from its games (score clipped to half a game from 0 and 1)."""
    wins, draws, losses = (np.asarray(x, float) for x in (wins, draws, losses))
    n = wins + draws + losses
    s = np.clip((wins + draws / 2) / n, 0.5 / n, 1 - 0.5 / n)
    return 400 * np.log10(s / (1 - s))


def head_to_head(pairs: pd.DataFrame, *, refits: int = 1000, reps: int = 4000, seed: int = 0,
                 level: float = 0.95) -> dict[str, Any]:
    """`pairs`: one row per width and seed, columns params, wins, draws, losses (the changed arm's
    games against the plain arm). Returns per-size Elo differences with intervals and the slope
    of the difference on log10(params)."""
    need = {"params", "wins", "draws", "losses"}
    if not need <= set(pairs.columns) or not len(pairs):
        raise UserError(f"head-to-head results need columns {sorted(need)} and at least one pair")
    d = pairs.reset_index(drop=True)
    n = (d["wins"] + d["draws"] + d["losses"]).to_numpy(int)
    if (n < 1).any():
        raise UserError("a head-to-head pair without games")
    rng = np.random.default_rng(seed)
    probs = d[["wins", "draws", "losses"]].to_numpy(float) / n[:, None]
    draws = np.stack([rng.multinomial(n[i], probs[i], size=refits) for i in range(len(d))], 1)   # [B, rows, 3]
    samples = pair_elo(draws[..., 0], draws[..., 1], draws[..., 2])
    table = pd.DataFrame({"params": d["params"].astype(np.int64), "elo": pair_elo(d["wins"], d["draws"], d["losses"])})
    # The seed deviations already hold each pair's game noise, so where every size has two seeds
    # or more the seeds alone are resampled (adding game refits too would count that noise twice
    # and widen the intervals: 0.99-1.00 coverage of a planted slope, against 0.93-0.96 without);
    # a size with one seed has no deviation to draw, so then the games are resampled as well.
    one_seed = (table.groupby("params").size() < 2).any()
    boot = size_bootstrap(table, samples if one_seed else None, reps=reps, seed=seed)
    notes = [n for n in boot.notes if not n.startswith("no Elo bootstrap samples")]
    by = {}
    for k, p in enumerate(boot.params):
        lo, hi = percentile(boot.samples[:, k], level)
        by[str(int(p))] = {"elo_diff": float(boot.mean[k]), "ci": [lo, hi], "seeds": int(boot.seeds[k]),
                           "games": int(n[(d["params"] == p).to_numpy()].sum())}
    out: dict[str, Any] = {"statistic": HEAD_TO_HEAD, "by_params": by, "level": level,
                           "interval": ("games resampled within pairs and seeds within sizes" if one_seed else
                                        "seeds resampled within sizes (their spread holds the games' noise), "
                                        "pooled over sizes, t-scaled"),
                           "notes": notes}
    decided = int(d["seat_decided"].sum()) if "seat_decided" in d else 0
    if "seat_decided" in d:
        from .seat import seat_decided
        out["seat"] = {"pairs": int(len(d)), "seat_decided_pairs": decided,
                       "seat_decided": seat_decided(decided, len(d))}
    if out.get("seat", {}).get("seat_decided"):
        out["slope"] = {"reading": f"not applicable: {decided} of {len(d)} head-to-head pairs were won by the first "
                                   f"mover in every game, so the seat, not the arm, decides them and an Elo "
                                   f"difference of 0 says nothing (measure where the agents' choices decide the games: "
                                   f"fewer match simulations or a larger board)"}
    elif len(boot.params) >= 2:
        x = np.log10(boot.params.astype(float))
        xc = x - x.mean()
        slope = float(xc @ (boot.mean - boot.mean.mean()) / (xc @ xc))
        reps_slope = (boot.samples - boot.samples.mean(1, keepdims=True)) @ xc / (xc @ xc)
        lo, hi = percentile(reps_slope, level)
        half = (hi - lo) / 2
        detectable = half * (1.959964 + 0.841621) / 1.959964     # found with 80% power at the 5% level
        out["slope"] = {"elo_per_decade": slope, "ci": [lo, hi], "half_width": half,
                        "detectable_80": detectable,
                        "reading": ("the arm's advantage over plain rises with size" if lo > 0 else
                                    "the arm's advantage over plain falls with size" if hi < 0 else
                                    f"not told from 0; a slope of about ±{detectable:.0f} Elo per decade of "
                                    f"parameters would be found with 80% power")}
    else:
        out["slope"] = {"reading": "not applicable: one size"}
    return out


def final_elo_by_size(elo_csv: Path) -> dict[str, Any]:
    """Mean final-checkpoint Elo (against the random player, 0) per size from a sweep's elo.csv."""
    from .elo_files import read_elo_table
    if not Path(elo_csv).exists():
        return {"available": False, "reason": f"{elo_csv} is missing (run the sweep's analysis)"}
    t = read_elo_table(elo_csv)
    t = t[t["kind"] == "agent"]
    t = t[t["step"] == t.groupby("run")["step"].transform("max")]
    by = {str(int(p)): {"elo": float(g["elo"].mean()), "seeds": int(len(g)),
                        "seed_sd": float(g["elo"].std(ddof=1)) if len(g) > 1 else None}
          for p, g in t.groupby("params")}
    return {"available": True, "by_params": by}


def verdict_summary(verdict_json: Path) -> dict[str, Any]:
    if not Path(verdict_json).exists():
        return {"available": False, "reason": f"{verdict_json} is missing (run the sweep's analysis)"}
    v = read_json(verdict_json, "verdict")
    power = v.get("power") or {}
    return {"available": True, "verdict": v.get("verdict"), "fall": v.get("fall"),
            "detectable_fall": power.get("minimum_detectable_fall") if isinstance(power, dict) else None}


def early_late_by_size(loss_json: Path, key: str = "early_late", name: str = "loss") -> dict[str, Any]:
    """A `loss --target solver` result's early/late table by size: the value loss (`early_late`)
    or, with key="move_accuracy" and name="accuracy", the exact move accuracy."""
    if not Path(loss_json).exists():
        return {"available": False, "reason": f"{loss_json} is missing (no exact values for this game, or the "
                                              f"sweep's analysis has not run)"}
    data = read_json(loss_json, "loss result")
    el = data.get(key, {})
    if not isinstance(el, dict) or not isinstance(el.get("by_params", {}), dict) \
            or not all(isinstance(e, dict) for e in el.get("by_params", {}).values()):
        raise UserError(f"{loss_json}: damaged loss result ({key} is not a table by size)")
    if not el:
        return {"available": False, "reason": f"{loss_json} holds no {key} (made before azscale measured it; "
                                              f"rerun the sweep with --reanalyse loss-solver)"}
    if not el.get("applicable", False):
        return {"available": False, "reason": el.get("reason", "not applicable")}
    by = {p: {k: e.get(k) for k in (f"early_{name}", "early_ci", f"late_{name}", "late_ci", "seeds")}
          for p, e in el.get("by_params", {}).items()}
    floors = data.get("observation") or {}
    if key == "early_late" and isinstance(floors, dict) and floors.get("applicable"):
        for p, e in by.items():           # the least loss any network seeing only the observation reaches
            f = (floors.get("by_params") or {}).get(p) or {}
            e.update(early_floor=f.get("early_floor"), late_floor=f.get("late_floor"))
    return {"available": True, "by_params": by, "late_turn": el.get("late_turn")}


REPLAY_METRICS = ("replay_distinct_share", "replay_top_share", "learned_late_share")


def replay_by_size(run_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`run_rows`: per run {params, metrics (its metrics.jsonl lines)}; the mean of each replay
    metric over the last third of each run's steps, then over seeds."""
    per: dict[int, dict[str, list[float]]] = {}
    for r in run_rows:
        m = r["metrics"]
        last = m[len(m) - max(1, len(m) // 3):] if m else []
        for k in REPLAY_METRICS:
            vals = [x.get(k) for x in last if isinstance(x.get(k), (int, float)) and math.isfinite(x.get(k))]
            if vals:
                per.setdefault(int(r["params"]), {}).setdefault(k, []).append(float(np.mean(vals)))
    if not per:
        return {"available": False, "reason": "the runs recorded no replay metrics (trained before azscale kept "
                                              "them, or no steps)"}
    return {"available": True, "window": "last third of each run's steps, then the mean over seeds",
            "by_params": {str(p): {k: float(np.mean(v)) for k, v in d.items()} for p, d in sorted(per.items())}}
