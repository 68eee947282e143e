"""The hierarchical bootstrap of Elo by model size (seeds within sizes, games within pairs).

What varies between two studies of the same sizes: the agents (each seed trains a different
agent, and seeds of one size differ by tens to over a hundred Elo) and the games they play
against each other. A replicate therefore draws both together:

1. games within pairs: one Elo refit on every pair's games resampled (the `B` replicates that
   `azscale elo --bootstrap B` stores in bootstrap.npz); replicate r uses refit r mod B;
2. seeds within sizes: every size's mean Elo is recomputed on seeds drawn with replacement.
   Two schemes:
   - `pooled` (default): each size draws as many seed deviations as it has seeds from the
     deviations of all sizes (deviation = a seed's Elo minus its size's mean, scaled by
     sqrt(n / (n - 1)) so that its variance is unbiased), added to the size's mean in that
     refit. It assumes that the seed-to-seed spread is the same at every size (the table
     reports each size's own spread beside the pooled one) and is what makes two or three
     seeds per size usable: with 7 sizes x 2 seeds the spread is estimated from 7 degrees of
     freedom instead of 1. A size with a single seed still gets seed noise.
   - `within`: each size redraws its own seeds (the same sqrt(n / (n - 1)) scaling); with two
     seeds a size mean can take only three values, so its intervals are ragged and too narrow
     (tests/test_verdict_stats.py measures both schemes).
Replicates are cheap once the refits exist, so `reps` (default 4000) can exceed `B`: the
seed draws are new in every replicate, the refit cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError

SCHEMES = ("pooled", "within")
DEFAULT_REPS = 4000
MAX_REPS = 1_000_000


@dataclass
class SizeBootstrap:
    params: np.ndarray            # distinct sizes, ascending [K]
    mean: np.ndarray              # mean Elo of each size's seeds [K]
    seeds: np.ndarray             # seeds per size [K]
    seed_sd: np.ndarray           # each size's seed standard deviation (nan for one seed) [K]
    pooled_sd: float              # pooled seed standard deviation (nan when no size has two seeds)
    samples: np.ndarray           # replicate size means [R, K]
    scheme: str
    elo_refits: int               # game-level refits used (0: none)
    notes: list[str] = field(default_factory=list)
    seed_df: int = 0              # degrees of freedom of the pooled seed spread: sum of (seeds - 1)

    @property
    def resamples(self) -> bool:
        """False when nothing varies between replicates (one seed per size and no refits)."""
        return bool(self.elo_refits or self.seed_df)

    def describe(self) -> str:
        games = (f"games resampled within every pair ({self.elo_refits} Elo refits)" if self.elo_refits
                 else "no game-level resampling (no Elo bootstrap samples)")
        seeds = {"pooled": "seeds resampled within sizes, seed deviations pooled over sizes",
                 "within": "seeds resampled within each size from its own seeds"}[self.scheme]
        return f"hierarchical bootstrap, {len(self.samples):,} replicates: {games}; {seeds}"

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "replicates": int(len(self.samples)), "elo_refits": self.elo_refits,
                "description": self.describe(), "pooled_seed_sd": self.pooled_sd,
                "sizes": [{"params": int(p), "mean_elo": float(m), "seeds": int(n),
                           "seed_sd": float(s)} for p, m, n, s in
                          zip(self.params, self.mean, self.seeds, self.seed_sd)],
                "notes": list(self.notes)}

    def subset(self, keep: np.ndarray) -> "SizeBootstrap":
        keep = np.asarray(keep, bool)
        return SizeBootstrap(self.params[keep], self.mean[keep], self.seeds[keep], self.seed_sd[keep],
                             self.pooled_sd, self.samples[:, keep], self.scheme, self.elo_refits, list(self.notes),
                             self.seed_df)


def check_resampling(reps: Any, seed: Any) -> None:
    """Replicates and seed as a user may give them: one clear error each."""
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or not 2 <= reps <= MAX_REPS:
        raise UserError(f"the bootstrap needs between 2 and {MAX_REPS:,} replicates, got {reps!r}")
    from ..checks import SEED_MAX, number
    number(seed, "the resampling seed", lo=0, hi=SEED_MAX, integer=True)     # the one seed range


def size_bootstrap(sizes: pd.DataFrame, elo_samples: np.ndarray | None = None, reps: int = DEFAULT_REPS,
                   seed: int = 0, scheme: str = "pooled", column: str = "elo") -> SizeBootstrap:
    """`sizes`: one row per agent (columns params and `column`, by default elo); `elo_samples`:
    the same values refitted on resampled games (or any lower-level resampling), [B, rows]
    aligned with `sizes` (None: seeds only)."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown seed resampling '{scheme}' (use {' or '.join(SCHEMES)})")
    check_resampling(reps, seed)
    elo = sizes[column].to_numpy(float)
    if not np.isfinite(elo).all():
        raise UserError(f"a missing or infinite value in '{column}' (one per agent is needed)")
    groups = sizes.groupby("params").indices
    params = np.array(sorted(groups), dtype=np.int64)
    idx = [np.asarray(groups[p]) for p in params]
    n = np.array([len(ix) for ix in idx])
    mean = np.array([elo[ix].mean() for ix in idx])
    sd = np.array([elo[ix].std(ddof=1) if len(ix) > 1 else math.nan for ix in idx])
    resid = np.concatenate([(elo[ix] - elo[ix].mean()) * math.sqrt(len(ix) / (len(ix) - 1))
                            for ix in idx if len(ix) > 1] or [np.zeros(0)])
    pooled_sd = float(math.sqrt((resid ** 2).mean())) if len(resid) else math.nan
    notes = []
    if not len(resid):
        notes.append("one seed per size: the seed-to-seed spread cannot be estimated, so the intervals "
                     "hold game-level noise only and are too narrow for conclusions about sizes")
    if elo_samples is not None and len(elo_samples):
        es = np.asarray(elo_samples, float)
        if es.ndim != 2 or es.shape[1] != len(elo):
            raise UserError("the Elo bootstrap samples do not match the Elo table")
    else:
        es = elo[None, :]
        notes.append("no Elo bootstrap samples: game-level noise is not resampled")
    if not np.isfinite(es).all():
        raise UserError("the bootstrap samples hold a missing or infinite value")
    B = len(es) if elo_samples is not None and len(elo_samples) else 0
    rng = np.random.default_rng(seed)
    K = len(params)
    # size means in every refit [len(es), K]
    base = np.stack([es[:, ix].mean(1) for ix in idx], 1)
    which = np.arange(reps) % len(es)
    out = base[which].copy()
    df = int(len(resid) - sum(1 for ix in idx if len(ix) > 1))      # sum of (n - 1) over sizes
    scale = np.sqrt(df / rng.chisquare(df, reps)) if df > 0 else np.ones(reps)
    for k, ix in enumerate(idx):
        nk = len(ix)
        if scheme == "pooled":
            if len(resid):
                out[:, k] += scale * resid[rng.integers(0, len(resid), (reps, nk))].mean(1)
        elif nk > 1:
            pick = ix[rng.integers(0, nk, (reps, nk))]                  # [reps, nk] rows of sizes
            draw = es[which[:, None], pick].mean(1)
            out[:, k] = base[which, k] + (draw - base[which, k]) * math.sqrt(nk / (nk - 1))
    if K and scheme == "within" and (n == 1).any() and len(resid):
        notes.append("sizes with one seed get no seed-level resampling under the 'within' scheme")
    return SizeBootstrap(params, mean, n, sd, pooled_sd, out, scheme, B, notes, df)


def percentile(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.percentile(x, [(1 - level) * 50, (1 + level) * 50])
    return float(lo), float(hi)


def p_not_lower(delta_samples: np.ndarray) -> float:
    """One-sided bootstrap p-value of 'no drop' (H0: delta >= 0) against a drop (delta < 0):
    the share of replicates in which the difference is not negative, (1 + count) / (1 + R), so
    that it is never 0."""
    d = np.asarray(delta_samples)
    return float((1 + (d >= 0).sum()) / (1 + len(d)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error under any dependence)."""
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    run = 0.0
    for rank, i in enumerate(order):
        run = max(run, min(1.0, (m - rank) * p[i]))
        adj[i] = run
    return adj
