"""Scaling fits: Elo against parameters, and saturating power laws for losses.

- Elo exponent: playing strength proportional to N^alpha_N with Elo = 400 log10(strength), so
  alpha_N = slope of Elo against log10(N) / 400 (PAPER.md section 6), fitted by least squares on
  the per-size mean Elo up to the peak (the size with the highest mean Elo: below the plateau
  or the fall) or inside a stated parameter range. Its interval refits the slope on every
  replicate of the hierarchical bootstrap (sizeboot.py: games resampled within pairs and seeds
  within sizes, together), with the fit range re-chosen in every replicate (up to that
  replicate's own peak), so that the interval holds the uncertainty of where the peak is: on a
  plateau the equal size that happens to score highest no longer fixes the range.
- Saturating power law: L(N) = L_inf + (N_c / N)^alpha, fitted in log space,
  log L = log(L_inf + exp(alpha (log N_c - log N))), with a Huber loss (robust to one bad run),
  from several starting points; interval by resampling seeds within each size.
- Quanta prediction: the loss exponent alpha_N(loss) = alpha_Z - 1 from a Zipf exponent, where
  alpha_Z > 1 (PAPER.md section 1; the full check is in quanta.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..errors import UserError
from .sizeboot import DEFAULT_REPS, SizeBootstrap, percentile, size_bootstrap


class NotApplicable(UserError):
    """The estimate is not defined for these data (said with the reason, not an input error)."""


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
    range_rule: str = ""
    resampling: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _slope(logn: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    b, a = np.polyfit(logn, y, 1)
    return float(b), float(a)


def elo_exponent(sizes: pd.DataFrame, samples: np.ndarray | None = None, min_params: int = 0,
                 max_params: int | None = None, level: float = 0.95, reps: int = DEFAULT_REPS, seed: int = 0,
                 scheme: str = "pooled", boot: SizeBootstrap | None = None, up_to_peak: bool = True) -> SlopeFit:
    """`sizes`: one row per agent with columns params, elo (seeds of one size are averaged).
    `samples`: Elo refits on games resampled within pairs, [B, rows] aligned with `sizes`; the
    interval comes from the hierarchical bootstrap (sizeboot.py: those refits and seeds
    resampled within sizes), or from `boot` when one is given. Without `max_params` the fit
    stops at the peak (the size with the highest mean Elo), so a plateau or a fall beyond it
    does not bend the slope; `up_to_peak=False` fits every size in range."""
    if boot is None:
        boot = size_bootstrap(sizes, samples, reps=reps, seed=seed, scheme=scheme)
    params = boot.params
    keep = (params >= min_params) & (params <= (np.inf if max_params is None else max_params))
    if keep.sum() < 2:
        raise UserError("the Elo exponent needs at least two model sizes in the chosen parameter range")
    rule = f"sizes from {min_params:,} parameters" if min_params else "all sizes"
    per_replicate = max_params is None and up_to_peak
    inside = np.flatnonzero(keep)
    if max_params is not None:
        rule += f" up to {max_params:,} parameters (--max-params)"
    elif up_to_peak:
        peak = inside[np.argmax(boot.mean[inside])]
        keep &= params <= params[peak]
        rule += (f" up to the peak ({int(params[peak]):,} parameters, the highest mean Elo; re-chosen in every "
                 "bootstrap replicate)" if peak != inside[-1] else
                 " (the largest size is the strongest, so every size below the peak; the peak re-chosen in every "
                 "bootstrap replicate)")
        if keep.sum() < 2:
            raise NotApplicable(f"the strongest size ({int(params[peak]):,} parameters) is the smallest in range: no "
                                "sizes below the peak to fit an exponent to")
    sub = boot.subset(keep)
    logn = np.log10(sub.params.astype(float))
    b, a = _slope(logn, sub.mean)
    fit = SlopeFit(b / 400, params_min=int(sub.params[0]), params_max=int(sub.params[-1]), sizes=len(sub.params),
                   intercept=a, note="alpha_N = slope of mean Elo (seeds averaged) vs log10(params) / 400",
                   range_rule=rule)
    if sub.resamples:
        if per_replicate:
            boot_alpha = _alpha_up_to_replicate_peak(np.log10(params[inside].astype(float)), boot.samples[:, inside])
            undefined = float(np.isnan(boot_alpha).mean())
            boot_alpha = boot_alpha[np.isfinite(boot_alpha)]
        else:
            boot_alpha, undefined = np.polyfit(logn, sub.samples.T, 1)[0] / 400, 0.0
        if len(boot_alpha) >= 2:
            fit.ci_low, fit.ci_high = percentile(boot_alpha, level)
            fit.stderr = float(boot_alpha.std(ddof=1))
        fit.resampling = {**sub.to_dict(), "level": level, "interval": "percentile",
                          "peak_rechosen_per_replicate": per_replicate,
                          "replicates_without_slope": undefined}
        if undefined:
            fit.note += (f"; in {undefined:.1%} of the replicates the smallest size is the strongest (no slope): the "
                         "interval is over the others")
    else:
        fit.resampling = {"interval": "none: one seed per size and no Elo bootstrap samples"}
    return fit


def _alpha_up_to_replicate_peak(logn: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """alpha_N of every replicate [R, K], fitted up to that replicate's own peak (NaN where the
    peak is the smallest size)."""
    peak = samples.argmax(1)
    out = np.full(len(samples), np.nan)
    for k in range(1, samples.shape[1]):
        rows = peak == k
        if rows.any():
            out[rows] = np.polyfit(logn[:k + 1], samples[rows, :k + 1].T, 1)[0] / 400
    return out


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


LOG_NC_MIN, ALPHA_MIN, ALPHA_MAX = -30.0, 1e-3, 10.0     # the fit's bounds (log N_c, alpha)


def not_identified(l_inf: float, n_c: float, alpha: float, n: np.ndarray, loss: np.ndarray) -> str | None:
    """Why a saturating fit's exponent means nothing, or None. Where the points do not fall as a
    power law the optimiser runs into its bounds: N_c at its floor makes (N_c/N)^alpha a constant
    (the curve is flat or rises over these points, and alpha is arbitrary); alpha at either bound
    is the bound, not an estimate. L_inf at its bound (the smallest loss) takes the lowest point
    as the asymptote: the curve is made to reach it exactly, and the exponent is only the
    curvature through the other points (an unconstrained fit wanted a floor above a measured
    loss: the points flatten faster than a power law). With 6 or more points, a fitted fall (in
    log loss, from the smallest to the largest N) within twice the scatter of the points around
    the fit is noise fitted as a power law: its exponent is not measured either."""
    if math.log(max(n_c, 1e-300)) <= LOG_NC_MIN + 0.01:
        return "the fit ran into its bounds (N_c at its floor): the loss does not fall as a power law over these points"
    lmin = float(np.min(loss))
    if l_inf >= lmin * (1 - 1e-6):
        return (f"the fitted floor L_inf sits at its bound, the smallest loss ({lmin:.4g}): the points flatten "
                "faster than a power law, and the exponent is the curvature through the others, not a measurement")
    if alpha <= ALPHA_MIN * 1.01 or alpha >= ALPHA_MAX * 0.99:
        return f"the fitted exponent sits at the fit's bound ({ALPHA_MIN:g} or {ALPHA_MAX:g})"
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(n) >= 6:
        fit = np.log(l_inf + (n_c / n) ** alpha)
        scatter = float(np.std(np.log(loss) - fit, ddof=3))
        fall = float(np.log(l_inf + (n_c / n.min()) ** alpha) - np.log(l_inf + (n_c / n.max()) ** alpha))
        if fall < 2 * scatter:
            return (f"the fitted fall over these points ({fall:.3f} in log loss) is within twice their scatter around "
                    f"the fit ({scatter:.3f}): no power-law fall to measure")
    return None


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
                                      bounds=([-30, LOG_NC_MIN, ALPHA_MIN],
                                              [math.log(lmin * 1.0001 + 1e-12), 60, ALPHA_MAX]))
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
    why = not_identified(l_inf, n_c, alpha, n, loss)
    if why:
        fit.extra["not_identified"] = why
    g = n if groups is None else np.asarray(groups)
    idx_by = [np.flatnonzero(g == v) for v in np.unique(g)]
    if bootstrap > 0 and max(len(ix) for ix in idx_by) < 2:
        # resampling one run per size returns the same points every time: a zero-width "interval"
        fit.extra["bootstrap"] = {"reps": 0, "note": "no interval: one run per size (resampling seeds within "
                                                     "sizes needs two or more seeds)"}
    elif bootstrap > 0:
        rng = np.random.default_rng(seed)
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
    """The quantization model's exponent of the loss against parameters from a rank-frequency
    exponent: alpha_Z - 1, defined only for alpha_Z > 1 (NaN otherwise; see quanta.py)."""
    return alpha_z - 1.0 if alpha_z > 1 else math.nan
