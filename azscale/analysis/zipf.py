"""Rank-frequency curves and their exponents.

Convention: every exponent reported here is the rank-frequency exponent alpha_Z, with
frequency proportional to rank^-alpha_Z (the paper's convention; the quanta prediction for the
parameter-scaling exponent is alpha_N = alpha_Z - 1).

Two estimators:
- `ls`: the paper's weighted least squares of log10(count) on log10(rank) inside a window
  (numpy's polyfit, which squares the weights, exactly as the paper's scripts use it).
  alpha_Z = -slope. Biased, as any log-log regression, but comparable with the paper.
- `mle`: a discrete power-law maximum-likelihood fit in the Clauset-Shalizi-Newman style, done by
  the `powerlaw` package on the distribution of *counts* (how many states were seen c times),
  with its lower cutoff x_min chosen by the Kolmogorov-Smirnov distance. If P(count = c) is
  proportional to c^-gamma for c >= x_min, the rank-frequency exponent is
  alpha_Z = 1 / (gamma - 1). The fit also reports a normalized log-likelihood ratio against a
  lognormal (R > 0 favours the power law; p is its significance).
Uncertainty: resampling over *games* (visits within a game are not independent), by default
the delete-a-group jackknife: games are split at random into K groups, each fit is redone K
times with one group left out, and the standard error is sqrt((K-1)/K * sum (theta_k -
mean)^2); the interval is the estimate +- z * that error. Why not the bootstrap (still
available as `interval="bootstrap"`): drawing games with replacement duplicates them, and a
duplicated game multiplies the counts of the states only it visited, turning singletons into
doubles and triples. Count-based fits then move: on 20,000 random Connect Four games every
bootstrap MLE fit ran into powerlaw's parameter bound (gamma = 3, alpha 0.5 against 0.83 on the
data) and the LS bootstrap mean sat 6 standard errors below the estimate. Leaving games out
never duplicates one, so counts keep their shape. Against the real spread of the estimators
over independent synthetic data sets (tests/test_zipf.py), the jackknife's errors are 0.9x (LS)
and 0.9x (MLE, x_min chosen on each data set); the bootstrap's MLE error was 0.4x. MLE replicates that powerlaw flags as stuck at a parameter bound are
dropped and counted in `details`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError

# The paper's fit windows (PAPER.md section 4). kind "ranks": [lo, hi] in ranks ("n/100" = the
# number of distinct states over 100); kind "counts": the ranks where the count falls from lo to hi.
PAPER_WINDOWS: dict[str, dict[str, Any]] = {
    "connect_four": {"kind": "ranks", "lo": 1e2, "hi": 2e6, "weight": "2/sqrt(rank)"},
    "pentago": {"kind": "ranks", "lo": 1e2, "hi": 2e6, "weight": "2/sqrt(rank)"},
    "oware": {"kind": "counts", "lo": 100, "hi": 10, "weight": "2/sqrt(rank)"},
    "checkers": {"kind": "counts", "lo": 100, "hi": 10, "weight": "2/sqrt(rank)"},
    "random": {"kind": "ranks", "lo": 1e2, "hi": "n/100", "weight": "2/rank"},
    "temperature": {"kind": "counts", "lo": 200, "hi": 4, "weight": "2/rank"},
}
# Games the paper does not fit (tic_tac_toe, any other OpenSpiel game): the count-based window
# adapts to the size of the data, where a fixed rank window (ranks 100 up) can be empty for
# small games.
DEFAULT_WINDOW = {"kind": "counts", "lo": 100, "hi": 10, "weight": "2/sqrt(rank)"}

# Too little data in a window (the LS fit gives no exponent, only these numbers): fewer than
# MIN_WINDOW_COUNTS distinct count values among the window's states, or more than
# MAX_SINGLETON_SHARE of them seen once. A line through a window of a few count levels, or
# through the plateau of states seen once (whose order among themselves is arbitrary), measures
# the plateau's length, not a power law: 153 real Connect Four games gave "alpha" 0.029 over
# ranks 10^2-2.2*10^3 that way. The MLE has its own rule: its tail (counts >= x_min) must hold
# at least MIN_WINDOW_COUNTS distinct counts.
MIN_WINDOW_COUNTS = 5
MAX_SINGLETON_SHARE = 0.5
TOO_LITTLE = "too little data in the window"


@dataclass
class FitResult:
    method: str                  # ls | mle
    alpha: float                 # rank-frequency exponent alpha_Z
    ci_low: float = math.nan     # bootstrap percentile interval (95% by default)
    ci_high: float = math.nan
    stderr: float = math.nan
    rank_min: int = 0            # ranks the fit used
    rank_max: int = 0
    points: int = 0
    window: str = ""             # how the window was chosen, in words
    weight: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_frequency(counts: np.ndarray) -> np.ndarray:
    """Counts sorted in decreasing order (rank 1 first)."""
    c = np.asarray(counts)
    return np.sort(c[c > 0])[::-1]


def window_for(name: str) -> dict[str, Any]:
    return dict(PAPER_WINDOWS.get(name, DEFAULT_WINDOW))


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def fmt_count(x: Any) -> str:
    """A rank or count as people write it: 2·10⁶, 10⁵, 2,193, 100, 0.5 (never 2000000.0): a
    whole multiple of a power of ten from 10⁴ up in that form, other numbers with separators."""
    if isinstance(x, str):
        return x.replace("n/100", "n/10²")
    v = float(x)
    if not math.isfinite(v):
        return str(v)
    if v.is_integer() and abs(v) >= 1e4:
        k = int(math.floor(math.log10(abs(v))))
        m = v / 10 ** k
        if abs(m - round(m)) < 1e-9:
            m = int(round(m))
            return (f"{'-' if v < 0 else ''}10{str(k).translate(_SUPERSCRIPT)}" if abs(m) == 1
                    else f"{m}·10{str(k).translate(_SUPERSCRIPT)}")
        return f"{int(v):,}"
    return f"{int(v):,}" if v.is_integer() else f"{v:g}"


def resolve_window(sorted_counts: np.ndarray, window: dict[str, Any]) -> tuple[int, int, str]:
    """Ranks [lo, hi] (1-based, inclusive) that a window selects, and its description (prefixed
    with the window's name, e.g. "temperature window: ", when it has one)."""
    n = len(sorted_counts)
    name = f"{window['label']}: " if window.get("label") else ""
    if window["kind"] == "ranks":
        lo = int(window["lo"])
        hi = window["hi"]
        hi_v = n / 100 if hi == "n/100" else float(hi)
        hi_i = int(min(n, hi_v))
        desc = f"{name}ranks {fmt_count(lo)} to {fmt_count(hi)} (= {hi_i:,})"
        return lo, hi_i, desc
    if window["kind"] == "counts":
        hi_c, lo_c = float(window["lo"]), float(window["hi"])
        inside = np.flatnonzero((sorted_counts <= hi_c) & (sorted_counts >= lo_c))
        if inside.size == 0:
            return 1, 0, f"{name}counts {fmt_count(hi_c)} down to {fmt_count(lo_c)} (no ranks)"
        lo, hi = int(inside[0]) + 1, int(inside[-1]) + 1
        return lo, hi, f"{name}counts {fmt_count(hi_c)} down to {fmt_count(lo_c)} (ranks {lo:,} to {hi:,})"
    raise UserError(f"unknown window kind {window['kind']!r}")


def window_data(sorted_counts: np.ndarray, lo: int, hi: int) -> dict[str, Any]:
    """What a window holds: states, distinct counts, highest and lowest count, share seen once;
    `enough` says whether the LS fit may give an exponent there (see MIN_WINDOW_COUNTS)."""
    c = np.asarray(sorted_counts[max(lo, 1) - 1:max(hi, 0)])
    states = int(c.size)
    distinct = int(np.unique(c).size) if states else 0
    ones = float((c == 1).mean()) if states else 0.0
    enough = distinct >= MIN_WINDOW_COUNTS and ones <= MAX_SINGLETON_SHARE
    return {"states": states, "distinct_counts": distinct, "count_max": int(c.max()) if states else 0,
            "count_min": int(c.min()) if states else 0, "singleton_share": ones, "enough": bool(enough),
            "rule": f"an exponent needs at least {MIN_WINDOW_COUNTS} distinct counts in the window and at most "
                    f"{MAX_SINGLETON_SHARE:.0%} of its states seen once"}


def too_little_text(d: dict[str, Any]) -> str:
    if not d["states"]:
        return f"{TOO_LITTLE}: it holds no state ({d['rule']})"
    return (f"{TOO_LITTLE}: {d['states']:,} states with {d['distinct_counts']} distinct count"
            f"{'s' if d['distinct_counts'] != 1 else ''} ({d['count_max']:,} down to {d['count_min']:,}), "
            f"{d['singleton_share']:.0%} of them seen once; {d['rule']}")


def _weights(ranks: np.ndarray, weight: str) -> np.ndarray:
    if weight == "2/sqrt(rank)":
        return 2 / np.sqrt(ranks)
    if weight == "2/rank":
        return 2 / ranks
    if weight == "none":
        return np.ones_like(ranks, dtype=float)
    raise UserError(f"unknown weight {weight!r} (2/sqrt(rank), 2/rank or none)")


def ls_line(sorted_counts: np.ndarray, lo: int, hi: int, weight: str) -> tuple[float, float]:
    """(alpha, log10 intercept) of the weighted least-squares line over ranks lo..hi."""
    if hi - lo + 1 < 3:
        return math.nan, math.nan
    r = np.arange(lo, hi + 1, dtype=float)
    y = np.log10(sorted_counts[lo - 1:hi].astype(float))
    slope, intercept = np.polyfit(np.log10(r), y, 1, w=_weights(r, weight))
    return float(-slope), float(intercept)


def ls_alpha(sorted_counts: np.ndarray, lo: int, hi: int, weight: str) -> float:
    return ls_line(sorted_counts, lo, hi, weight)[0]


def window_alpha(sorted_counts: np.ndarray, window: dict[str, Any]) -> float:
    """The LS exponent in a window, NaN where the window holds too little data (as `fit_ls`)."""
    lo, hi, _ = resolve_window(sorted_counts, window)
    if not window_data(sorted_counts, lo, hi)["enough"]:
        return math.nan
    return ls_alpha(sorted_counts, lo, hi, window["weight"])


def fit_ls(counts: np.ndarray, window: dict[str, Any]) -> FitResult:
    sc = rank_frequency(counts)
    lo, hi, desc = resolve_window(sc, window)
    held = window_data(sc, lo, hi)
    details: dict[str, Any] = {"window_data": held}
    if not held["enough"]:
        details["too_little_data"] = True
        return FitResult("ls", math.nan, rank_min=lo, rank_max=hi, points=held["states"],
                         window=f"{desc}: {too_little_text(held)}", weight=window["weight"], details=details)
    alpha, intercept = ls_line(sc, lo, hi, window["weight"])
    details["log10_intercept"] = intercept
    return FitResult("ls", alpha, rank_min=lo, rank_max=hi, points=max(0, hi - lo + 1),
                     window=desc, weight=window["weight"], details=details)


def _powerlaw_fit(counts: np.ndarray, xmin: float | None):
    """powerlaw.Fit with its estimates computed (it fits lazily) while its warnings are muted;
    None where powerlaw cannot fit the data at all (it raises on a tail with no points left)."""
    try:
        import powerlaw
    except ImportError:
        raise UserError("the maximum-likelihood fit needs the powerlaw package "
                        "(pip install powerlaw)") from None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            f = powerlaw.Fit(np.asarray(counts, dtype=float), discrete=True, xmin=xmin, verbose=False)
            pl = f.power_law
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return None
        f.estimates = (float(pl.alpha), float(pl.standard_err if hasattr(pl, "standard_err") else pl.sigma))
        return f


# powerlaw's cost grows with (data size) x (candidate x_min values); above this many states the
# x_min search starts at the smallest count that keeps at most this many (the floor is reported).
MLE_MAX_POINTS = 3_000_000


def fit_mle(counts: np.ndarray, xmin: float | None = None, compare: bool = True) -> FitResult:
    c = rank_frequency(counts)
    if len(c) < 10 or c[0] < 2:
        return FitResult("mle", math.nan, window=f"too little data to fit: {len(c):,} states, highest count "
                                                 f"{int(c[0]) if len(c) else 0:,} (the fit needs at least 10 "
                                                 "states and a count above 1)",
                         details={"too_little_data": True})
    floor = 1.0
    if xmin is None and len(c) > MLE_MAX_POINTS:
        floor = float(c[MLE_MAX_POINTS] + 1)          # counts >= floor number at most the cap
    f = _powerlaw_fit(c[c >= floor] if floor > 1 else c, xmin)
    if f is None:
        return FitResult("mle", math.nan, window="powerlaw could not fit these counts (no tail to fit)")
    gamma, sigma = f.estimates
    alpha = 1.0 / (gamma - 1.0) if gamma > 1 else math.nan
    # states with count >= xmin are ranks 1..k
    k = int((c >= f.xmin).sum())
    tail_counts = int(np.unique(c[:k]).size)
    if tail_counts < MIN_WINDOW_COUNTS:
        return FitResult("mle", math.nan, rank_min=1, rank_max=k, points=k, weight="likelihood",
                         window=f"too little data in the tail: counts >= xmin = {fmt_count(f.xmin)} (ranks 1 to {k:,}) hold "
                                f"{tail_counts} distinct count{'s' if tail_counts != 1 else ''}; an exponent needs at "
                                f"least {MIN_WINDOW_COUNTS}",
                         details={"too_little_data": True, "xmin": float(f.xmin), "tail_distinct_counts": tail_counts})
    details = {"gamma": gamma, "gamma_sigma": sigma, "xmin": float(f.xmin),
               "xmin_search_floor": floor, "conversion": "alpha_Z = 1 / (gamma - 1)"}
    if compare:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            R, p = f.distribution_compare("power_law", "lognormal", normalized_ratio=True)
        details.update({"lognormal_R": float(R), "lognormal_p": float(p)})
    return FitResult("mle", alpha, stderr=sigma / (gamma - 1) ** 2 if gamma > 1 else math.nan,
                     rank_min=1, rank_max=k, points=k, weight="likelihood",
                     window=f"counts >= xmin = {fmt_count(f.xmin)} (chosen by KS distance"
                            + (f" among counts >= {fmt_count(floor)}" if floor > 1 else "") + f"; ranks 1 to {k:,})",
                     details=details)


def bootstrap_counts(state_of_visit: np.ndarray, game_of_visit: np.ndarray, n_games: int,
                     reps: int, seed: int = 0):
    """Yield state-count vectors recomputed on games resampled with replacement."""
    rng = np.random.default_rng(seed)
    n_states = int(state_of_visit.max()) + 1 if len(state_of_visit) else 0
    for _ in range(reps):
        w = np.bincount(rng.integers(0, n_games, n_games), minlength=n_games).astype(np.float64)
        yield np.bincount(state_of_visit, weights=w[game_of_visit], minlength=n_states)


def jackknife_counts(state_of_visit: np.ndarray, game_of_visit: np.ndarray, n_games: int,
                     groups: int, seed: int = 0):
    """Yield state-count vectors with one random group of games left out, for each of `groups`."""
    rng = np.random.default_rng(seed)
    n_states = int(state_of_visit.max()) + 1 if len(state_of_visit) else 0
    group_of_game = rng.permutation(n_games) % groups
    group_of_visit = group_of_game[game_of_visit]
    for g in range(groups):
        yield np.bincount(state_of_visit[group_of_visit != g], minlength=n_states)


INTERVALS = ("jackknife", "bootstrap")


def fit_all(counts: np.ndarray, window: dict[str, Any], visits=None, bootstrap: int = 0,
            level: float = 0.95, seed: int = 0, mle: bool = True,
            interval: str = "jackknife") -> list[FitResult]:
    """Both fits; with `visits` (state index and game index per visit) and `bootstrap` > 0
    replicates, standard errors and intervals from resampling games (`interval`: the grouped
    jackknife with `bootstrap` groups, or the bootstrap with `bootstrap` resamples; see the
    module text). The MLE replicates keep x_min fixed at the full-data choice (refitting x_min
    on every replicate would dominate the cost)."""
    if interval not in INTERVALS:
        raise UserError(f"unknown interval method '{interval}' (use {' or '.join(INTERVALS)})")
    out = [fit_ls(counts, window)]
    if mle:
        out.append(fit_mle(counts))
    if visits is None or bootstrap <= 0:
        return out
    state_idx, game_idx, n_games = visits
    reps = min(bootstrap, n_games) if interval == "jackknife" else bootstrap
    if reps < 2:
        return out
    gen = (jackknife_counts if interval == "jackknife" else bootstrap_counts)(state_idx, game_idx, n_games,
                                                                               reps, seed)
    ls_samples, mle_samples, stuck = [], [], 0
    for bc in gen:
        sc = rank_frequency(bc)
        ls_samples.append(window_alpha(sc, window))
        if mle and not math.isnan(out[1].alpha):
            xm = out[1].details["xmin"]
            f = _powerlaw_fit(sc[sc >= xm], xm)            # only the tail enters the fit
            if f is None:                                  # nothing left to fit: not usable
                mle_samples.append(math.nan)
                continue
            g = f.estimates[0]
            if getattr(f.power_law, "noise_flag", False):  # stuck at powerlaw's parameter bound
                stuck += 1
                mle_samples.append(math.nan)
            else:
                mle_samples.append(1 / (g - 1) if g > 1 else math.nan)
    from scipy.stats import norm
    z = float(norm.ppf((1 + level) / 2))
    for res, samples in ((out[0], ls_samples), (out[1] if mle else None, mle_samples)):
        if res is None:
            continue
        s_ = np.asarray([x for x in samples if not math.isnan(x)])
        info: dict[str, Any] = {"method": interval, "replicates": len(samples), "usable": int(s_.size),
                                "level": level, "resampled": "games",
                                "interval": f"estimate +- z * {interval} standard error"}
        if res.method == "mle":
            info["stuck_at_bound"] = stuck
        if s_.size > 1 and s_.size >= len(samples) / 2:
            if interval == "jackknife":
                k = s_.size
                res.stderr = float(math.sqrt((k - 1) / k * ((s_ - s_.mean()) ** 2).sum()))
            else:
                res.stderr = float(s_.std(ddof=1))
                info["bootstrap_mean"] = float(s_.mean())
                info["percentile_interval"] = [float(x) for x in np.percentile(s_, [(1 - level) * 50,
                                                                                   (1 + level) * 50])]
            res.ci_low, res.ci_high = res.alpha - z * res.stderr, res.alpha + z * res.stderr
        else:
            info["interval"] = "none: too few usable replicates"
            res.ci_low = res.ci_high = math.nan
            res.stderr = math.nan          # (the MLE's analytic error assumes independent visits)
        res.details["resampling"] = info
    return out


def toy_tree_counts(branching: int, depth: int) -> np.ndarray:
    """Visit counts when every path of a uniform tree (branching b, depth d) is played once:
    each of the b^k states at depth k (1 <= k < d) is visited b^(d-k) times; leaves are
    terminal and not counted."""
    return np.concatenate([np.full(branching ** k, branching ** (depth - k), dtype=np.int64)
                           for k in range(1, depth)])


def staircase_envelope(sorted_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The outer corners of a staircase rank-frequency curve: the last rank of each count."""
    last = np.flatnonzero(np.r_[sorted_counts[1:] != sorted_counts[:-1], True])
    return last + 1.0, sorted_counts[last].astype(float)


def envelope_alpha(sorted_counts: np.ndarray) -> float:
    r, c = staircase_envelope(sorted_counts)
    return float(-np.polyfit(np.log10(r), np.log10(c), 1)[0])


def plot_points(sc: np.ndarray, grid: int = 2000) -> np.ndarray:
    """Indices that draw a sorted count curve exactly as a line: the first and last rank of every
    run of equal counts (the staircase's corners) plus a log grid. Far fewer points than states
    (at most 2 x distinct counts + grid), so figures of 10^7 states stay small, SVG included."""
    n = len(sc)
    if n == 0:
        return np.zeros(0, int)
    change = np.flatnonzero(np.diff(sc)) if n > 1 else np.zeros(0, int)
    corners = np.r_[0, change, change + 1, n - 1]
    return np.unique(np.r_[corners, np.geomspace(1, n, grid).astype(int) - 1])


def plot_rank_frequency(curves: list[dict[str, Any]], path_stem, title: str = "") -> list[str]:
    """Log-log rank-frequency figure, one curve per entry ({label, counts, fits}), fit lines and
    exponents (with intervals) in the legend; writes PNG and SVG, returns their paths."""
    from .plotting import curve_colours, pyplot, run_styles, save
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 5))
    sized = [c for c in curves if "params" in c]
    if sized and len(sized) == len([c for c in curves if c["label"] != "combined"]):
        # runs: smallest to largest in the legend, one colour per size and one line style per seed
        style = run_styles((c["label"], c["params"], c["seed"]) for c in sized)
        order = {r: k for k, r in enumerate(style)}
        curves = sorted(curves, key=lambda c: order.get(c["label"], len(order)))
        colours = [style[c["label"]]["color"] if c["label"] in style else "k" for c in curves]
        lines = [style[c["label"]]["ls"] if c["label"] in style else "-" for c in curves]
    else:
        colours, lines = curve_colours([c["label"] for c in curves]), ["-"] * len(curves)
    for cur, colour, line in zip(curves, colours, lines):
        sc = rank_frequency(cur["counts"])
        r = np.arange(1, len(sc) + 1)
        idx = plot_points(sc)
        label = cur["label"]
        for f in cur.get("fits", []):
            if f.method == "ls" and not math.isnan(f.alpha):
                ci = "" if math.isnan(f.ci_low) else f" [{f.ci_low:.3f}, {f.ci_high:.3f}]"
                label += f"; LS α={f.alpha:.3f}{ci}"
                rr = np.array([f.rank_min, f.rank_max], float)
                b = (f.details or {}).get("log10_intercept")
                y = (10 ** b * rr ** -f.alpha if b is not None and not math.isnan(b)
                     else sc[f.rank_min - 1] * (rr / f.rank_min) ** -f.alpha)
                ax.plot(rr, y, "--", color="k", lw=1)
            if f.method == "mle" and not math.isnan(f.alpha):
                label += f"; MLE α={f.alpha:.3f}"
        ax.loglog(r[idx], sc[idx], ls=line, lw=1.2, color=colour, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("visit count")
    ax.set_title(title or "rank-frequency")
    ax.legend(fontsize=7, markerscale=4)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return save(fig, path_stem)
