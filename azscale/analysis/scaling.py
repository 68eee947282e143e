"""Scaling fits: Elo against parameters, and saturating power laws for losses.

- Elo exponent: playing strength proportional to N^alpha_N with Elo = 400 log10(strength), so
  alpha_N = slope of Elo against log10(N) / 400 (PAPER.md section 6), fitted by least squares on
  the per-size mean Elo inside a stated parameter range (below the saturation plateau). Its
  interval comes from refitting the slope on every bootstrap sample of the Elo fit.
- Saturating power law: L(N) = L_inf + (N_c / N)^alpha, fitted in log space,
  log L = log(L_inf + exp(alpha (log N_c - log N))), with a Huber loss (robust to one bad run),
  from several starting points; interval by resampling seeds within each size.
- Quanta prediction: alpha_N = alpha_Z - 1 from a Zipf exponent (PAPER.md section 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..errors import UserError


@dataclass
class SlopeFit:
    alpha: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    stderr: float = math.nan
    params_min: int = 0
    params_max: int = 0
    sizes: int = 0
    intercept: float = math.nan
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _slope(logn: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    b, a = np.polyfit(logn, y, 1)
    return float(b), float(a)


def elo_exponent(sizes: pd.DataFrame, samples: np.ndarray | None = None, min_params: int = 0,
                 max_params: int | None = None, level: float = 0.95) -> SlopeFit:
    """`sizes`: one row per player with columns params, elo (and any others). `samples`: bootstrap
    ratings [reps, rows] aligned with `sizes`. Seeds of one size are averaged first."""
    keep = (sizes["params"] >= min_params) & (sizes["params"] <= (max_params or np.inf))
    s = sizes[keep]
    groups = s.groupby("params").indices
    if len(groups) < 2:
        raise UserError("the Elo exponent needs at least two model sizes in the chosen parameter range")
    params = np.array(sorted(groups))
    logn = np.log10(params)
    mean_elo = np.array([s["elo"].to_numpy()[groups[p]].mean() for p in params])
    b, a = _slope(logn, mean_elo)
    fit = SlopeFit(b / 400, params_min=int(params[0]), params_max=int(params[-1]), sizes=len(params),
                   intercept=a, note="alpha_N = slope of mean Elo vs log10(params) / 400")
    if samples is not None and len(samples):
        sub = samples[:, np.flatnonzero(keep.to_numpy())]
        boot = []
        for row in sub:
            m = np.array([row[groups[p]].mean() for p in params])
            boot.append(_slope(logn, m)[0] / 400)
        boot = np.array(boot)
        q = [(1 - level) * 50, (1 + level) * 50]
        fit.ci_low, fit.ci_high = (float(x) for x in np.percentile(boot, q))
        fit.stderr = float(boot.std(ddof=1))
    return fit


@dataclass
class SaturatingFit:
    l_inf: float
    n_c: float
    alpha: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    points: int = 0
    note: str = "L(N) = L_inf + (N_c / N)^alpha, Huber loss in log space"
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, n: np.ndarray) -> np.ndarray:
        return self.l_inf + (self.n_c / np.asarray(n, float)) ** self.alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fit_saturating(n: np.ndarray, loss: np.ndarray) -> tuple[float, float, float, float]:
    logn, logl = np.log(n), np.log(loss)

    def resid(p):
        log_linf, log_nc, alpha = p
        return np.logaddexp(log_linf, alpha * (log_nc - logn)) - logl

    best = None
    lmin = float(loss.min())
    for l0 in (lmin * 0.01, lmin * 0.5, lmin * 0.9):
        for a0 in (0.2, 0.5, 1.0):
            for nc0 in (float(np.median(n)), float(n.min()), float(n.max())):
                x0 = [math.log(max(l0, 1e-12)), math.log(nc0), a0]
                try:
                    r = least_squares(resid, x0, loss="huber", f_scale=0.05,
                                      bounds=([-30, -30, 1e-3], [math.log(lmin * 1.0001 + 1e-12), 60, 10]))
                except ValueError:
                    continue
                if best is None or r.cost < best.cost:
                    best = r
    if best is None:
        raise UserError("the saturating power-law fit failed on these points")
    log_linf, log_nc, alpha = best.x
    return math.exp(log_linf), math.exp(log_nc), float(alpha), float(best.cost)


def saturating_fit(n: np.ndarray, loss: np.ndarray, groups: np.ndarray | None = None, bootstrap: int = 0,
                   seed: int = 0, level: float = 0.95) -> SaturatingFit:
    """Fit L(N) = L_inf + (N_c/N)^alpha. With `groups` (size labels, one per point, several seeds
    per size) and `bootstrap`, the interval for alpha comes from resampling seeds within sizes."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(np.unique(n)) < 3 or (loss <= 0).any():
        raise UserError("the saturating power law needs positive losses at >= 3 distinct sizes")
    l_inf, n_c, alpha, cost = _fit_saturating(n, loss)
    fit = SaturatingFit(l_inf, n_c, alpha, points=len(n), extra={"cost": cost})
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        g = n if groups is None else np.asarray(groups)
        idx_by = [np.flatnonzero(g == v) for v in np.unique(g)]
        boot = []
        for _ in range(bootstrap):
            pick = np.concatenate([rng.choice(ix, size=len(ix)) for ix in idx_by])
            try:
                boot.append(_fit_saturating(n[pick], loss[pick])[2])
            except UserError:
                continue
        if len(boot) > 1:
            q = [(1 - level) * 50, (1 + level) * 50]
            fit.ci_low, fit.ci_high = (float(x) for x in np.percentile(boot, q))
            fit.extra["bootstrap"] = {"reps": len(boot), "resampled": "seeds within each size"}
    return fit


def quanta_prediction(alpha_z: float) -> float:
    """The quantization model's parameter-scaling exponent from a rank-frequency exponent."""
    return alpha_z - 1.0
