"""The temperature study (PAPER.md sections 4 and 8, the paper's Fig. 3): per inference
temperature, the Zipf tail of the match games and the Elo scaling exponent, and their relation.

Per temperature T (its round-robin's games and win/draw/loss counts only):
- Zipf tail: the states of the match games played at T, LS-fitted in the paper's temperature
  window (the ranks where the count falls from 200 to 4, weight 2/rank) and by maximum
  likelihood, with jackknife intervals over games (zipf.py).
- Elo: Bradley-Terry fitted to that temperature's results alone (elo.py), anchored at the
  smallest agent; Elo refits on games resampled within pairs.
- Elo exponent: slope of the size-mean Elo against log10(parameters) / 400 up to the peak (the
  size with the highest mean Elo: below saturation), its interval from the hierarchical bootstrap
  (sizeboot.py: games within pairs and seeds within sizes).

Stability of the tail (`tail_stability`): the LS exponent refitted on each half of the games
in the same window. A near-greedy game tree at low temperature has no power-law tail: its
exponent grows with the number of games (a simulated one gave 1.57 with 600 games and 3.83 with
20,000), and the window's "enough data" rule cannot see it. When the halves' mean exponent moves
from the full exponent by more than twice its interval's half-width, the temperature is marked "too
few games" and left out of the correlation.

The relation (`exponent_correlation`): Pearson's r between alpha_Z and alpha_N over every
temperature where both are defined and the tail is stable. It correlates the Elo exponent,
which the quantization model's alpha_Z - 1 does not predict, so temperatures with alpha_Z <= 1
are kept (the paper's own plot keeps only the low-temperature points, with a cut marked at
alpha_Z = 1; the figure marks the cut too). The restriction to alpha_Z > 1 is an option of the
function for a test of alpha_Z - 1 itself. The interval is Fisher's z (atanh r +- z /
sqrt(n - 3)), so it needs n >= 4 temperatures; r needs n >= 3. It treats each temperature's
pair of exponents as one observation (their own intervals are drawn in the figure, not
propagated). Beside it, the least-squares slope of alpha_N on alpha_Z with its t interval
(n - 2 degrees of freedom).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..checks import number
from ..errors import UserError
from .elo import fit_elo
from .scaling import NotApplicable, elo_exponent
from .sizeboot import size_bootstrap
from .zipf import fit_all, fmt_count, rank_frequency, window_for

# PAPER.md section 4: the paper's 17 inference temperatures.
PAPER_TEMPERATURES = (0.01, 0.02, 0.04, 0.07, 0.1, 0.14, 0.2, 0.25, 0.32, 0.45, 0.6, 0.8, 1.0, 1.4, 2.0, 3.0, 5.0)
MIN_POINTS_R = 3
MIN_POINTS_CI = 4


def parse_temperatures(spec: str | Sequence[float], option: str = "--temperatures") -> list[float]:
    """`paper` (the paper's 17) or comma-separated temperatures > 0, each once; sorted. `option`
    names the option (or setting) they came from in every refusal."""
    if isinstance(spec, str):
        if spec.strip() == "paper":
            return list(PAPER_TEMPERATURES)
        items = [x.strip() for x in spec.split(",") if x.strip()]
        if not items:
            raise UserError(f"{option} must be 'paper' or comma-separated temperatures, e.g. 0.1,0.25,1")
        vals = []
        for x in items:
            try:
                v = float(x)
            except ValueError:
                raise UserError(f"{option}: '{x}' is not a number (give 'paper' or numbers like 0.1,0.25,1)") \
                    from None
            vals.append(v)
    else:
        vals = list(spec)
    out = [number(v, f"{option}: each temperature", lo=0, lo_open=True, hi=1000) for v in vals]
    if len(set(f"{t:g}" for t in out)) != len(out):      # (each temperature's directory is T-<t:g>)
        raise UserError(f"{option} names a temperature twice, or two that agree to 6 significant digits "
                        f"({', '.join(f'{t:g}' for t in out)})")
    if not out:
        raise UserError(f"{option} must name at least one temperature")
    return sorted(out)


@dataclass
class TemperatureData:
    """What one temperature's analysis reads: the states' visit counts (with the state and game
    of every visit, for the jackknife), the ordered-pair results, and the agents' sizes."""
    temperature: float
    counts: np.ndarray
    visits: tuple[np.ndarray, np.ndarray, int] | None
    results: pd.DataFrame             # first, second, wins, draws, losses
    agents: pd.DataFrame              # player, params (one row per agent; seeds share params)
    games: int = 0


def _opt(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def tail_stability(counts: np.ndarray, visits: tuple[np.ndarray, np.ndarray, int] | None, window: dict[str, Any],
                   fit: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Does the LS tail exponent depend on the number of games? Refit it on each half of the
    games (split at random), in the same window: a tail that is a power law gives the same
    exponent on half the games (the count window moves to other ranks of the same law); a tail
    that bends (a near-greedy game tree) gives a different one, because the window then sits
    on another part of the curve. "Too few games" when the mean of the two halves' exponents
    moves from the exponent of all games by more than twice the half-width of its interval
    (about four standard errors: on planted power laws, alpha_Z 1.2, 1.6 and 2.0 with 2,000
    games, 12 samples each, the shift stayed within 1.6 half-widths, beyond 1 in 2 of 36)."""
    from .zipf import window_alpha
    rule = ("refit on each half of the games (random split by game, the same window); unstable when the mean of "
            "the halves' exponents differs from the exponent of all games by more than twice its interval's "
            "half-width")
    a, lo, hi = _opt(fit.get("alpha")), _opt(fit.get("ci_low")), _opt(fit.get("ci_high"))
    if visits is None:
        return {"stable": None, "rule": rule, "reason": "not checked: no per-visit data"}
    if a is None or lo is None or hi is None:
        return {"stable": None, "rule": rule, "reason": "not checked: no exponent with an interval"}
    state, game, n_games = visits
    if n_games < 4:
        return {"stable": None, "rule": rule, "reason": f"not checked: {n_games} games"}
    half = np.random.default_rng(seed).permutation(n_games) % 2
    n_states = len(counts)
    alphas = []
    for h in (0, 1):
        c = np.bincount(np.asarray(state)[half[np.asarray(game)] == h], minlength=n_states)
        alphas.append(window_alpha(rank_frequency(c), window))
    width = max(a - lo, hi - a)
    out = {"alpha_halves": [_opt(x) for x in alphas], "alpha_all": a, "half_width": width, "rule": rule}
    if not all(math.isfinite(x) for x in alphas):
        return {**out, "stable": False, "shift": None,
                "reason": "too few games: half of the games hold too little data in the window for an exponent"}
    shift = float(np.mean(alphas) - a)
    stable = abs(shift) <= 2 * width
    return {**out, "stable": bool(stable), "shift": shift,
            "reason": "" if stable else (f"too few games: on half of the games the exponent moves by {shift:+.3f}, "
                                         f"beyond twice its interval's half-width (±{width:.3f}); it depends on the number of games")}


def temperature_point(d: TemperatureData, window: dict[str, Any], zipf_replicates: int = 20,
                      elo_bootstrap: int = 100, replicates: int = 4000, seed: int = 0, min_params: int = 0,
                      max_params: int | None = None, mle: bool = True) -> dict[str, Any]:
    """Zipf tail, Elo and Elo exponent at one temperature, with their intervals."""
    fits = fit_all(d.counts, window, d.visits if zipf_replicates else None, zipf_replicates, seed=seed, mle=mle)
    zipf = {f.method: f.to_dict() for f in fits}
    stability = {"ls": tail_stability(d.counts, d.visits, window, zipf.get("ls", {}), seed)}
    agents = d.agents.sort_values(["params", "player"], ignore_index=True)
    anchor = agents["player"].iloc[0]
    fit = fit_elo(d.results, anchor=anchor, bootstrap=elo_bootstrap, seed=seed)
    col = {p: k for k, p in enumerate(fit.players)}
    missing = [p for p in agents["player"] if p not in col]
    if missing:
        raise UserError(f"temperature {d.temperature:g}: no results for {', '.join(missing[:3])}")
    idx = [col[p] for p in agents["player"]]
    sizes = pd.DataFrame({"params": agents["params"].to_numpy(np.int64), "elo": fit.ratings[idx]})
    samples = fit.samples[:, idx] if fit.samples is not None else None
    boot = size_bootstrap(sizes, samples, reps=replicates, seed=seed)
    try:
        ef = elo_exponent(sizes, min_params=min_params, max_params=max_params, boot=boot).to_dict()
    except NotApplicable as e:
        ef = {"alpha": None, "ci_low": None, "ci_high": None, "note": f"not applicable: {e}"}
    except UserError as e:
        ef = {"alpha": None, "ci_low": None, "ci_high": None, "note": f"not computed: {e}"}
    players = [{"player": p, "params": int(n), "elo": float(fit.ratings[col[p]]),
                "elo_ci_low": _opt(fit.ci_low[col[p]]) if fit.bootstrap else None,
                "elo_ci_high": _opt(fit.ci_high[col[p]]) if fit.bootstrap else None}
               for p, n in zip(agents["player"], agents["params"])]
    return {"temperature": float(d.temperature), "games": int(d.games), "visits": int(np.sum(d.counts)),
            "distinct_states": int(np.count_nonzero(d.counts)), "zipf": zipf, "zipf_stability": stability,
            "elo": {"anchor": anchor, "first_move": fit.first_move, "draw_width": fit.draw_width,
                    "bootstrap": fit.bootstrap, "players": players,
                    "size_means": [{"params": int(p), "mean_elo": float(m), "seeds": int(n)}
                                   for p, m, n in zip(boot.params, boot.mean, boot.seeds)],
                    "resampling": boot.describe()},
            "elo_exponent": ef}


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def exponent_correlation(temperatures: Sequence[float], alpha_z: Sequence[float | None],
                         alpha_n: Sequence[float | None], level: float = 0.95,
                         zipf_note: Sequence[str] = (), elo_note: Sequence[str] = (),
                         restrict_above_1: bool = False, unstable: Sequence[str] = ()) -> dict[str, Any]:
    """Pearson's r of alpha_N on alpha_Z over every temperature where both are defined (and
    the tail is stable: `unstable[k]` a non-empty reason leaves temperature k out), with
    Fisher's z interval, and the LS slope with its t interval. `restrict_above_1` also leaves
    out alpha_Z <= 1: only for a test of the quanta model's alpha_Z - 1, which is not positive
    there; the Elo exponent is no such test. Every temperature left out is listed with its
    reason."""
    from scipy.stats import norm, t as student

    excluded: dict[str, list[dict[str, Any]]] = {"alpha_Z_le_1": [], "no_zipf_exponent": [], "no_elo_exponent": [],
                                                 "unstable_tail": []}
    keep = []
    for k, (T, z, n) in enumerate(zip(temperatures, alpha_z, alpha_n)):
        zf = z is not None and math.isfinite(z)
        nf = n is not None and math.isfinite(n)
        if not zf:
            excluded["no_zipf_exponent"].append({"temperature": T, "why": zipf_note[k] if k < len(zipf_note) else ""})
        elif k < len(unstable) and unstable[k]:
            excluded["unstable_tail"].append({"temperature": T, "why": unstable[k]})
        elif restrict_above_1 and z <= 1:
            excluded["alpha_Z_le_1"].append({"temperature": T, "alpha_Z": z})
        elif not nf:
            excluded["no_elo_exponent"].append({"temperature": T, "why": elo_note[k] if k < len(elo_note) else ""})
        else:
            keep.append((T, z, n))
    n_used = len(keep)
    out: dict[str, Any] = {
        "rule": ("temperatures where alpha_Z > 1 and both exponents are defined; alpha_Z <= 1 leaves the quanta "
                 "model's alpha = alpha_Z - 1 non-positive, so those points are excluded and counted"
                 if restrict_above_1 else
                 "every temperature where both exponents are defined and the tail exponent is stable (it correlates "
                 "the Elo exponent, which alpha_Z - 1 does not predict, so alpha_Z <= 1 is kept)"),
        "restricted_to_alpha_Z_above_1": restrict_above_1,
        "points_used": n_used, "temperatures_used": [T for T, _, _ in keep], "excluded": excluded,
        "excluded_count": int(sum(len(v) for v in excluded.values())),
        "excluded_alpha_Z_le_1": len(excluded["alpha_Z_le_1"]), "level": level,
        "pearson_r": None, "ci": [None, None], "slope": None, "slope_ci": [None, None], "defined": False}
    if n_used < MIN_POINTS_R:
        out["reason"] = (f"not defined: {n_used} temperature{'s' if n_used != 1 else ''} with "
                         + ("α_Z > 1 and " if restrict_above_1 else "") + "both exponents"
                         + ("" if restrict_above_1 else " and a stable tail")
                         + f" (the correlation needs at least {MIN_POINTS_R})")
        return out
    x = np.array([z for _, z, _ in keep])
    y = np.array([n for _, _, n in keep])
    r = _pearson(x, y)
    if not math.isfinite(r):
        out["reason"] = "not defined: one of the exponents does not vary over the temperatures used"
        return out
    out.update({"defined": True, "pearson_r": r})
    q = float(norm.ppf((1 + level) / 2))
    if n_used >= MIN_POINTS_CI:
        zr = math.atanh(max(-1 + 1e-15, min(1 - 1e-15, r)))
        se = 1 / math.sqrt(n_used - 3)
        out["ci"] = [math.tanh(zr - q * se), math.tanh(zr + q * se)]
        out["interval"] = f"Fisher z: tanh(atanh r ± {q:.2f} / sqrt(n − 3)), n = {n_used}"
    else:
        out["interval"] = f"none: Fisher's interval needs at least {MIN_POINTS_CI} temperatures, {n_used} used"
    b, a = np.polyfit(x, y, 1)
    out["slope"], out["intercept"] = float(b), float(a)
    if n_used >= 3:
        resid = y - (a + b * x)
        dfree = n_used - 2
        s2 = float((resid ** 2).sum() / dfree)
        sxx = float(((x - x.mean()) ** 2).sum())
        se_b = math.sqrt(s2 / sxx) if sxx > 0 else math.nan
        tq = float(student.ppf((1 + level) / 2, dfree))
        out["slope_ci"] = [float(b - tq * se_b), float(b + tq * se_b)]
        out["slope_interval"] = f"least squares of alpha_N on alpha_Z, t interval with {dfree} degrees of freedom"
    return out


def study_tables(points: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per temperature: the exponents, their intervals and windows (the study's CSV)."""
    rows = []
    for p in points:
        ls, mle = p["zipf"].get("ls", {}), p["zipf"].get("mle", {})
        ef = p["elo_exponent"]
        rows.append({"temperature": p["temperature"], "games": p["games"], "visits": p["visits"],
                     "distinct_states": p["distinct_states"],
                     "alpha_Z_ls": _opt(ls.get("alpha")), "alpha_Z_ls_ci_low": _opt(ls.get("ci_low")),
                     "alpha_Z_ls_ci_high": _opt(ls.get("ci_high")), "ls_window": ls.get("window"),
                     "alpha_Z_mle": _opt(mle.get("alpha")), "alpha_Z_mle_ci_low": _opt(mle.get("ci_low")),
                     "alpha_Z_mle_ci_high": _opt(mle.get("ci_high")), "mle_window": mle.get("window"),
                     "alpha_N_elo": _opt(ef.get("alpha")), "alpha_N_elo_ci_low": _opt(ef.get("ci_low")),
                     "alpha_N_elo_ci_high": _opt(ef.get("ci_high")), "elo_sizes": ef.get("sizes"),
                     "elo_params_min": ef.get("params_min"), "elo_params_max": ef.get("params_max"),
                     "elo_range": ef.get("range_rule") or ef.get("note")})
    return pd.DataFrame(rows)


def correlations(points: list[dict[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """`exponent_correlation` for the LS (the paper's) and the MLE tail exponent."""
    temps = [p["temperature"] for p in points]
    an = [p["elo_exponent"].get("alpha") for p in points]
    en = [p["elo_exponent"].get("note", "") for p in points]
    out = {}
    for m in ("ls", "mle"):
        if not all(m in p["zipf"] for p in points):
            continue
        az = [p["zipf"][m].get("alpha") for p in points]
        zn = [p["zipf"][m].get("window", "") for p in points]
        un = [(p.get("zipf_stability", {}).get(m) or {}).get("reason", "") if
              (p.get("zipf_stability", {}).get(m) or {}).get("stable") is False else "" for p in points]
        out[m] = exponent_correlation(temps, az, an, level, zn, en, unstable=un)
    return out


# --- figures (the paper's Fig. 3) -----------------------------------------------------------------

def _ci_text(lo, hi) -> str:
    return "" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]"


def plot_curves(points: list[dict[str, Any]], counts: dict[float, np.ndarray], stem: Path, title: str) -> list[str]:
    """Fig. 3a: the match games' rank-frequency curves, one per temperature, with the LS line."""
    from .plotting import pyplot, save, temperature_colours
    plt = pyplot()
    from .zipf import plot_points

    colour = temperature_colours([p["temperature"] for p in points])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for p in points:
        T = p["temperature"]
        sc = rank_frequency(counts[T])
        if not len(sc):
            continue
        idx = plot_points(sc)
        ls = p["zipf"].get("ls", {})
        a = _opt(ls.get("alpha"))
        lab = (f"T = {T:g}: α_Z = {a:.2f}{_ci_text(_opt(ls.get('ci_low')), _opt(ls.get('ci_high')))}" if a is not None
               else f"T = {T:g}: too little data in the window")
        ax.loglog(idx + 1.0, sc[idx], "-", lw=1.1, color=colour[T], label=lab)
        b = (ls.get("details") or {}).get("log10_intercept")
        if a is not None and b is not None:
            rr = np.array([ls["rank_min"], ls["rank_max"]], float)
            ax.plot(rr, 10 ** b * rr ** -a, "--", color="k", lw=0.8)
    ax.set_xlabel("rank")
    ax.set_ylabel("visit count")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, ncol=2 if len(points) > 8 else 1)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return save(fig, stem)


def plot_elo(points: list[dict[str, Any]], stem: Path, title: str) -> list[str]:
    """Fig. 3b: size-mean Elo against parameters per temperature (relative to the smallest size),
    with the fitted exponent's line over its range."""
    from .plotting import pyplot, save, temperature_colours
    plt = pyplot()

    colour = temperature_colours([p["temperature"] for p in points])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for p in points:
        T = p["temperature"]
        sm = p["elo"]["size_means"]
        x = np.array([s["params"] for s in sm], float)
        y = np.array([s["mean_elo"] for s in sm])
        base = y[0]
        ef = p["elo_exponent"]
        a = ef.get("alpha")
        lab = (f"T = {T:g}: α_N = {a:.2f}{_ci_text(ef.get('ci_low'), ef.get('ci_high'))}" if a is not None
               else f"T = {T:g}: α_N not applicable")
        ax.plot(x, y - base, "o", ms=4, color=colour[T], label=lab)
        if a is not None:
            xs = np.geomspace(ef["params_min"], ef["params_max"], 30)
            ax.plot(xs, ef["intercept"] + 400 * a * np.log10(xs) - base, "-", lw=1, color=colour[T])
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("mean Elo relative to the smallest size\n(each temperature rated on its own games)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6, ncol=2 if len(points) > 8 else 1)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save(fig, stem)


def plot_exponents(points: list[dict[str, Any]], corr: dict[str, Any], stem: Path, title: str,
                   method: str = "ls") -> list[str]:
    """Fig. 3c: Zipf tail exponent against Elo exponent, the alpha_Z = 1 cut marked; points left
    out of the correlation (an unstable tail, say) drawn hollow."""
    from .plotting import pyplot, save, temperature_colours
    plt = pyplot()

    colour = temperature_colours([p["temperature"] for p in points])
    fig, ax = plt.subplots(figsize=(6.5, 5))
    used = set((corr or {}).get("temperatures_used", []))
    for p in points:
        T = p["temperature"]
        f = p["zipf"].get(method, {})
        z, n = _opt(f.get("alpha")), p["elo_exponent"].get("alpha")
        if z is None or n is None:
            continue
        zl, zh = _opt(f.get("ci_low")), _opt(f.get("ci_high"))
        nl, nh = p["elo_exponent"].get("ci_low"), p["elo_exponent"].get("ci_high")
        xerr = [[z - zl], [zh - z]] if zl is not None and zh is not None else None
        yerr = [[n - nl], [nh - n]] if nl is not None and nh is not None else None
        inside = T in used
        ax.errorbar([z], [n], xerr=xerr, yerr=yerr, fmt="o", ms=6, capsize=2, color=colour[T],
                    mfc=colour[T] if inside else "white", label=f"T = {T:g}" + ("" if inside else " (excluded)"))
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no temperature has both exponents", transform=ax.transAxes, ha="center", fontsize=8)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.text(1.0, 1.0, " α_Z = 1: α_Z − 1 not positive left of the cut (kept in the correlation)", transform=ax.get_xaxis_transform(),
            fontsize=6, va="top", color="grey")
    c = corr or {}
    if c.get("defined"):
        ci = c.get("ci") or [None, None]
        rtxt = (f"r = {c['pearson_r']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else
                                               " (no interval)")
                + f", {c['points_used']} temperatures; {c['excluded_count']} excluded")
    else:
        rtxt = f"correlation {c.get('reason', 'not computed')}"
    ax.set_xlabel(f"Zipf tail exponent α_Z ({method.upper()}, temperature window)")
    ax.set_ylabel("Elo exponent α_N (below the peak)")
    ax.set_title(f"{title}\n{rtxt}", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=2 if len(points) > 8 else 1)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save(fig, stem)


# --- Markdown ----------------------------------------------------------------------------------

def _num(x, nd=3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x + 0.0:.{nd}f}"


def correlation_line(c: dict[str, Any], method: str) -> str:
    head = f"Correlation of α_N with α_Z ({method.upper()})"
    ex = c.get("excluded", {})
    parts = []
    if c.get("restricted_to_alpha_Z_above_1", True) or ex.get("alpha_Z_le_1"):
        le1 = ", ".join(f"{e['temperature']:g}" for e in ex.get("alpha_Z_le_1", []))
        parts.append(f"{c.get('excluded_alpha_Z_le_1', 0)} temperature(s) with α_Z ≤ 1 excluded"
                     + (f" ({le1})" if le1 else ""))
    else:
        parts.append("every temperature kept whatever its α_Z (α_Z − 1 is not what this tests)")
    un = ex.get("unstable_tail", [])
    if un:
        parts.append(f"{len(un)} with an unstable tail excluded, too few games ("
                     + ", ".join(f"{e['temperature']:g}" for e in un) + ")")
    other = ex.get("no_zipf_exponent", []) + ex.get("no_elo_exponent", [])
    if other:
        parts.append(f"{len(other)} without one of the exponents (" + ", ".join(f"{e['temperature']:g}"
                                                                          for e in other) + ")")
    left = "; ".join(parts)
    if not c.get("defined"):
        return f"- {head}: {c.get('reason', 'not computed')}; {left}."
    ci = c.get("ci") or [None, None]
    rci = f"[{_num(ci[0])}, {_num(ci[1])}] ({c.get('interval')})" if ci[0] is not None else f"({c.get('interval')})"
    sci = c.get("slope_ci") or [None, None]
    return (f"- {head}: r = {_num(c['pearson_r'])} {rci} over {c['points_used']} temperatures; slope of α_N on α_Z "
            f"{_num(c['slope'])} [{_num(sci[0])}, {_num(sci[1])}]; {left}.")


def _stability_cell(st: dict[str, Any] | None) -> str:
    if not st:
        return "not checked"
    if st.get("stable") is None:
        return st.get("reason", "not checked")
    h = st.get("alpha_halves") or []
    halves = ", ".join(_num(x) for x in h)
    return f"{halves}: {'stable' if st['stable'] else '**too few games**'}"


def summary_markdown(res: dict[str, Any]) -> str:
    st = res["settings"]
    fw = res["fit_window"]
    lines = [f"# Temperature study: {res['game']}", "",
             f"- agents: {len(res['players'])} ({', '.join(p['name'] for p in res['players'])})",
             f"- round-robin at each temperature: {st['games_per_pair']} games per pair, seats alternating, "
             f"{st['simulations']} simulations, temperature at every move, no noise",
             f"- Zipf tail: LS in the {fw.get('label', 'window')} (ranks where the count falls from "
             f"{fmt_count(fw['lo'])} to {fmt_count(fw['hi'])}, weight {fw['weight']}) and MLE; intervals: "
             f"{res['intervals']['zipf']}",
             f"- Elo: each temperature rated on its own games, anchor the smallest agent; α_N = slope of size-mean Elo "
             f"vs log10(params) / 400 up to the peak; intervals: {res['intervals']['elo']}", "",
             "| T | games | distinct states | α_Z (LS) | 95% CI | LS on halves of the games | α_Z (MLE) | 95% CI | "
             "α_N (Elo) | 95% CI | Elo fit range |",
             "| ---: | ---: | ---: | ---: | --- | --- | ---: | --- | ---: | --- | --- |"]
    for p in res["points"]:
        ls, mle, ef = p["zipf"].get("ls", {}), p["zipf"].get("mle", {}), p["elo_exponent"]

        def ci(f):
            lo, hi = _opt(f.get("ci_low")), _opt(f.get("ci_high"))
            return "n/a" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]"
        rng = (f"{ef['params_min']:,}–{ef['params_max']:,} ({ef['sizes']} sizes)" if ef.get("alpha") is not None
               else ef.get("note", ""))
        lines.append(f"| {p['temperature']:g} | {p['games']:,} | {p['distinct_states']:,} | {_num(_opt(ls.get('alpha')))} "
                     f"| {ci(ls)} | {_stability_cell((p.get('zipf_stability') or {}).get('ls'))} "
                     f"| {_num(_opt(mle.get('alpha')))} | {ci(mle)} | {_num(ef.get('alpha'))} | {ci(ef)} | "
                     f"{rng} |")
    unstable = [p for p in res["points"] if ((p.get("zipf_stability") or {}).get("ls") or {}).get("stable") is False]
    if unstable:
        lines += [""] + [f"- T = {p['temperature']:g}, LS: {p['zipf_stability']['ls']['reason']}." for p in unstable]
    no_ls = [p for p in res["points"] if _opt(p["zipf"].get("ls", {}).get("alpha")) is None]
    if no_ls:
        lines += [""] + [f"- T = {p['temperature']:g}, LS: {p['zipf']['ls']['window']}" for p in no_ls]
    lines += ["", "## Zipf tail against Elo exponent", ""]
    for m, c in res["correlation"].items():
        lines.append(correlation_line(c, m))
    lines += ["", "Figures: " + ", ".join(res["figures"]), ""]
    return "\n".join(lines)


def paper_window() -> dict[str, Any]:
    return {**window_for("temperature"), "label": "temperature window", "chosen_for": "match games at one temperature"}


# --- a study directory (azscale temperature) ----------------------------------------------------

def read_temperature(out: Path, T: float, record: dict[str, Any], workers: int = 1) -> TemperatureData:
    """One temperature's data from its tournament directory: states of its match games (replayed),
    the ordered-pair results and the agents."""
    from .. import runs
    from .states import build_states
    from .zipf_report import _index_visits

    d = Path(out) / f"{runs.STUDY_TOURNAMENT_PREFIX}{T:g}"
    st = runs.read_settings(d)
    if abs(float(st["temperature"]) - T) > 1e-9:
        raise UserError(f"{d}: its tournament was played at temperature {st['temperature']}, not {T:g}")
    games = runs.read_games(d)
    table, visits = build_states(games, kinds=["match"], temperature=T, workers=workers, keep_visits=True,
                                 sources=[str(d.resolve())])
    agents = pd.DataFrame([{"player": p["name"], "params": int(p["params"])} for p in record["players"]
                           if p["kind"] == "agent"])
    return TemperatureData(T, table["count"].to_numpy(), _index_visits(visits), runs.read_results(d), agents,
                           games=int(games.num_rows))


def analyse_study(out: Path, temps: Sequence[float], record: dict[str, Any], zipf_replicates: int = 20,
                  elo_bootstrap: int = 100, replicates: int = 4000, seed: int = 0, min_params: int = 0,
                  max_params: int | None = None, fit_window: str = "paper", workers: int = 1,
                  log=print) -> dict[str, Any]:
    """Every temperature's point, the correlation, the table, the figures and the summary."""
    from .. import runs
    from .zipf_report import parse_fit_window

    out = Path(out)
    game = record["settings"]["game"]
    points, counts = [], {}
    window = None
    for i, T in enumerate(sorted(temps)):
        log(f"analysis: temperature {T:g} ({i + 1}/{len(temps)})")
        data = read_temperature(out, T, record, workers)
        window = parse_fit_window(fit_window, game, ["match"], None, [T])
        p = temperature_point(data, window, zipf_replicates, elo_bootstrap, replicates, seed, min_params, max_params)
        points.append(p)
        counts[T] = data.counts
    corr = correlations(points)
    table = study_tables(points)
    runs.atomic_write_text(out / "study.csv", table.to_csv(index=False))
    sub = (f"{game}; {len(record['players'])} agents; {record['settings']['games_per_pair']} games per pair, "
           f"{record['settings']['simulations']} simulations")
    figs = plot_curves(points, counts, out / "temperature_curves",
                       f"match games by temperature ({sub})\nLS in the {window['label']} (dashed)")
    figs += plot_elo(points, out / "temperature_elo", f"Elo against parameters by temperature ({sub})")
    figs += plot_exponents(points, corr.get("ls"), out / "temperature_exponents",
                           f"Zipf tail against Elo exponent across temperatures ({sub})")
    res = {"game": game, "name": record["name"], "settings": record["settings"],
           "players": [{"name": p["name"], "run": p["run"], "params": p["params"]} for p in record["players"]],
           "temperatures": sorted(temps), "fit_window": {k: v for k, v in window.items() if k != "chosen_for"},
           "exponent_convention": "frequency ∝ rank^-alpha_Z; Elo ∝ 400 alpha_N log10(params)",
           "intervals": {"zipf": (f"jackknife over games, {zipf_replicates} groups (estimate ± 1.96 standard errors)"
                                  if zipf_replicates else "none (--zipf-replicates 0)"),
                         "elo": (f"hierarchical bootstrap, {replicates:,} replicates: {elo_bootstrap} Elo refits on "
                                 "games resampled within pairs, seeds resampled within sizes")},
           "points": points, "correlation": corr, "figures": [Path(f).name for f in figs]}
    runs.atomic_write_json(out / "study.json", res)
    runs.atomic_write_text(out / "summary.md", summary_markdown(res))
    return res
