"""End-game evidence, as the paper defines it (PAPER.md section 7).

A state is *late* when its mean turn number over its occurrences is >= `late_turn` (40 for
oware and checkers; per game in the `[analysis]` table of games/<game>.toml). The paper's
evidence that frequent end-game states shape a game's Zipf curve, each measured here over the
shoulder range, ranks 10^2 to 10^4 (ending earlier when the data have fewer states seen at
least twice: a state seen once carries no frequency information, and ranks among such states
are an arbitrary order):

1. late share: the share of late states among the states at those ranks, and its excess
   over the late share of all visits (how much of the play is late at all); the paper finds
   ~0.8-0.9 beyond rank ~200 for oware;
2. without the end game the curve is steeper: the LS exponent of the curve of the first
   `shoulder_moves` (50) moves of each game (as `azscale zipf --first-moves 50` counts them;
   the paper's shoulder test) and of the curve without late states (re-ranked), each against
   the curve of all states. These two remove the same states wherever early and late states
   separate (every committed study: oware's top 10,000 states have early mean turn <= 5 and
   late >= 127), so they are one criterion, which holds when both gaps are above zero; the
   record says whether the two gaps agree. Each gap is fitted over ranks 10^2 up to the last
   rank at which both of its curves still hold states seen at least twice (the curve of the
   first moves has fewer states; among states seen once, ranks are an arbitrary order). The
   window moves the gap (on 4,000 random oware games: +0.227 over ranks 10^2-10^4, -0.029 in
   the paper's window), so the first-moves gap in the paper's count window (each curve over
   its own ranks there) is printed beside it, for comparison, not as a criterion.

Each statistic has a delete-a-group jackknife interval over games (the Zipf fits' method), and
a criterion holds only when its interval is on the right side of zero. Games too short for an
end game (all of whose games end before `late_turn` or within the first `shoulder_moves`
moves) get "not applicable" with the reason, never empty tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .plotting import curve_colours, pyplot, save

LATE_TURN = 40            # the paper's value, also the `_default.toml` one
SHOULDER_MOVES = 50
SHOULDER_RANKS = (100, 10_000)
FIT_WEIGHT = "2/sqrt(rank)"


# --- applicability -------------------------------------------------------------------------

def max_game_length(game: str) -> int:
    from ..engines.spiel import load_spiel_game
    return int(load_spiel_game(game).max_game_length())


def applicability(game: str, late_turn: float, shoulder_moves: int) -> dict[str, Any]:
    """Whether the end-game analysis can say anything for `game`: its games must be able to
    run past both the late turn and the shoulder test's first moves."""
    n = max_game_length(game)
    need = max(late_turn, shoulder_moves)
    if n <= need:
        return {"applicable": False, "max_game_length": n,
                "reason": f"not applicable: games last at most {n} moves (the end-game analysis needs games "
                          f"that can run past late_turn = {late_turn:g} and the shoulder test's first "
                          f"{shoulder_moves} moves)"}
    return {"applicable": True, "max_game_length": n, "reason": ""}


# --- rank-bin views -------------------------------------------------------------------------

def _tie_share(sorted_counts: np.ndarray, flag: np.ndarray, lo: int, hi: int) -> float:
    """Share of flagged states over ranks lo..hi (1-based, inclusive), counting a block of
    equal counts that the range cuts by its flagged fraction (so the answer does not depend on
    how ties are ordered)."""
    if hi < lo:
        return math.nan
    c = np.asarray(sorted_counts)
    f = np.asarray(flag, float)
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    ends = np.r_[starts[1:], len(c)]                       # block k: ranks starts+1 .. ends
    frac = np.add.reduceat(f, starts) / (ends - starts)
    overlap = np.clip(np.minimum(ends, hi) - np.maximum(starts + 1, lo) + 1, 0, None)
    return float((overlap * frac).sum() / (hi - lo + 1))


def late_share_by_rank(counts: np.ndarray, mean_turn: np.ndarray, threshold: float = LATE_TURN,
                       bins_per_decade: int = 4, lo: int = 1, hi: int | None = None) -> pd.DataFrame:
    """Rows: rank bin [rank_lo, rank_hi), states in it, share of late states (ties cut by a bin
    edge count by their late fraction), mean of mean_turn. `counts` and `mean_turn` must be in
    rank order (decreasing count); bins cover ranks lo..hi (default: all)."""
    n = len(counts)
    hi = n if hi is None else min(hi, n)
    cols = ["rank_lo", "rank_hi", "states", "late_share", "mean_turn"]
    if n == 0 or hi < lo:
        return pd.DataFrame(columns=cols)
    a, b = math.log10(lo), math.log10(hi + 1)
    edges = np.unique(np.floor(np.logspace(a, b, max(1, int(math.ceil((b - a) * bins_per_decade))) + 1))
                      .astype(np.int64))
    edges[0], edges[-1] = lo, hi + 1
    late = np.asarray(mean_turn) >= threshold
    rows = []
    for e0, e1 in zip(edges[:-1], edges[1:]):
        if e1 <= e0:
            continue
        rows.append({"rank_lo": int(e0), "rank_hi": int(e1), "states": int(e1 - e0),
                     "late_share": _tie_share(counts, late, int(e0), int(e1) - 1),
                     "mean_turn": float(np.mean(mean_turn[e0 - 1:e1 - 1]))})
    return pd.DataFrame(rows, columns=cols)


def early_counts(counts: np.ndarray, mean_turn: np.ndarray, threshold: float = LATE_TURN) -> np.ndarray:
    return np.asarray(counts)[np.asarray(mean_turn) < threshold]


# --- the evidence ---------------------------------------------------------------------------

def _top(counts: np.ndarray, k: int, flag: np.ndarray | None = None):
    """The states of the k largest counts (and the whole block of the k-th count), sorted in
    decreasing count; with `flag`, its values in the same order."""
    c = np.asarray(counts)
    if len(c) > k > 0:
        kth = np.partition(c, len(c) - k)[len(c) - k]
        sel = np.flatnonzero(c >= kth)
    else:
        sel = np.arange(len(c))
    order = sel[np.argsort(-c[sel], kind="stable")]
    return c[order], (None if flag is None else np.asarray(flag)[order])


def _ls(sorted_counts: np.ndarray, lo: int, hi: int) -> float:
    from .zipf import ls_alpha
    hi = min(hi, int((sorted_counts > 0).sum()))
    return ls_alpha(sorted_counts, lo, hi, FIT_WEIGHT) if hi - lo + 1 >= 3 else math.nan


def _height(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> float:
    """Mean log10 gap between two sorted count curves at 40 log-spaced ranks in lo..hi."""
    r = np.unique(np.geomspace(lo, hi, 40).astype(np.int64))
    r = r[(r <= len(a)) & (r <= int((b > 0).sum()))]
    if not len(r):
        return math.nan
    return float(np.mean(np.log10(a[r - 1]) - np.log10(b[r - 1])))


def _top_window_alpha(count: np.ndarray, window: dict[str, Any] | None) -> tuple[float, int, int]:
    """The LS exponent of a curve (unsorted per-state counts) in a zipf.py window, without sorting
    every state: a count window needs only the states seen at least its lowest count. NaN
    where the window holds too little (zipf.py's rule)."""
    from .zipf import resolve_window, window_alpha
    if not window:
        return math.nan, 0, 0
    c = np.asarray(count)
    if window["kind"] == "counts":
        c = np.sort(c[c >= float(window["hi"])])[::-1]
    else:
        n = int((c > 0).sum())
        hi = n / 100 if window["hi"] == "n/100" else float(window["hi"])
        c, _ = _top(c[c > 0], int(min(n, hi)))
        if window["hi"] == "n/100":
            window = {**window, "hi": int(min(n, hi))}
    if not len(c):
        return math.nan, 1, 0
    lo, hi, _ = resolve_window(c, window)
    return window_alpha(c, window), lo, hi


def evidence_stats(count: np.ndarray, turn_sum: np.ndarray, count_first: np.ndarray, late_turn: float,
                   ranks: tuple[int, int] = SHOULDER_RANKS, paper_window: dict[str, Any] | None = None
                   ) -> dict[str, float]:
    """The evidence's statistics from per-state arrays (any order): visits, sum of turn numbers
    over visits, visits within the first moves. States never visited are ignored.

    Windows. The late share is read over ranks `ranks` of the all-states curve, ending at its
    last state seen at least twice. Each exponent gap compares two curves over one window:
    ranks `ranks[0]` to the last rank at which *both* curves still hold states seen at least
    twice (the curve without late states or of the first moves has fewer states, and ranks
    among states seen once are an arbitrary order). Beside it, the gap of the first-moves curve
    in the paper's count window (`paper_window`, each curve over its own ranks there)."""
    seen = count > 0
    count, turn_sum, count_first = count[seen], turn_sum[seen], count_first[seen]
    late = turn_sum / count >= late_turn
    lo = ranks[0]
    hi = int(min(ranks[1], (count >= 2).sum()))
    hi_early = int(min(hi, (count[~late] >= 2).sum()))
    hi_first = int(min(hi, (count_first >= 2).sum()))
    out = {"rank_lo": lo, "rank_hi": hi, "rank_hi_early": hi_early, "rank_hi_first": hi_first,
           "states": int(len(count)), "visits": int(count.sum()), "late_states": int(late.sum()),
           "late_share_visits": float((count * late).sum() / count.sum()) if count.sum() else math.nan}
    keys = ("late_share", "late_excess", "alpha_all", "alpha_early", "alpha_first", "alpha_gap_late",
            "alpha_gap_first", "shoulder_height", "alpha_gap_first_paper")
    if hi - lo + 1 < 10:
        return {**out, **{k: math.nan for k in keys}}
    c_all, l_all = _top(count, hi, late)
    c_early, _ = _top(count[~late], hi)
    c_first, _ = _top(count_first, hi)
    share = _tie_share(c_all, l_all, lo, hi)
    a_all, a_early, a_first = _ls(c_all, lo, hi), _ls(c_early, lo, hi_early), _ls(c_first, lo, hi_first)
    gap_late = a_early - _ls(c_all, lo, hi_early) if hi_early - lo + 1 >= 10 else math.nan
    gap_first = a_first - _ls(c_all, lo, hi_first) if hi_first - lo + 1 >= 10 else math.nan
    paper = _top_window_alpha(count_first, paper_window)[0] - _top_window_alpha(count, paper_window)[0]
    return {**out, "late_share": share, "late_excess": share - out["late_share_visits"],
            "alpha_all": a_all, "alpha_early": a_early if hi_early - lo + 1 >= 10 else math.nan,
            "alpha_first": a_first if hi_first - lo + 1 >= 10 else math.nan,
            "alpha_gap_late": gap_late, "alpha_gap_first": gap_first,
            "shoulder_height": _height(c_all, c_first, lo, hi_first), "alpha_gap_first_paper": paper}


def per_state_arrays(state_idx: np.ndarray, turn: np.ndarray, shoulder_moves: int,
                     keep: np.ndarray | None = None, n_states: int | None = None):
    """Per-state visits, turn sums and first-moves visits from per-visit arrays."""
    n = int(state_idx.max()) + 1 if n_states is None else n_states
    s, t = (state_idx, turn) if keep is None else (state_idx[keep], turn[keep])
    count = np.bincount(s, minlength=n)
    tsum = np.bincount(s, weights=t.astype(np.float64), minlength=n)
    first = np.bincount(s[t <= shoulder_moves], minlength=n)
    return count, tsum, first


STAT_TEXT = {
    "late_share": "share of late states at the shoulder ranks",
    "late_share_visits": "late share of all visits",
    "late_excess": "excess of the first over the second",
    "alpha_all": "LS exponent, all states",
    "alpha_early": "LS exponent without late states",
    "alpha_first": "LS exponent, first moves only",
    "alpha_gap_late": "exponent without late states minus with them",
    "alpha_gap_first": "exponent of the first moves minus all moves",
    "alpha_gap_first_paper": "the same gap in the paper's count window, each curve over its own ranks there",
    "shoulder_height": "mean gap (decades) of the all-moves curve over the first-moves curve",
}


def endgame_evidence(state_idx: np.ndarray, turn: np.ndarray, game_idx: np.ndarray, n_games: int,
                     late_turn: float, shoulder_moves: int, groups: int = 20, seed: int = 0,
                     level: float = 0.95, ranks: tuple[int, int] = SHOULDER_RANKS,
                     paper_window: dict[str, Any] | None = None) -> dict[str, Any]:
    """The evidence with jackknife intervals over games, and which criteria hold.
    Per-visit inputs: dense state index, turn number (1 = after the first move) and dense game
    index (the visits of `azscale zipf`)."""
    from scipy.stats import norm

    n_states = int(state_idx.max()) + 1 if len(state_idx) else 0
    if n_states == 0:
        return {"measured": False, "reason": "no visits to count"}
    est = evidence_stats(*per_state_arrays(state_idx, turn, shoulder_moves, n_states=n_states), late_turn, ranks,
                         paper_window)
    res: dict[str, Any] = {"late_turn": late_turn, "shoulder_moves": shoulder_moves,
                           "ranks": {"lo": est["rank_lo"], "hi": est["rank_hi"], "requested": list(ranks),
                                     "hi_early": est["rank_hi_early"], "hi_first": est["rank_hi_first"],
                                   "rule": f"ranks {ranks[0]:,} to {ranks[1]:,}, ending at the last state "
                                             "seen at least twice; an exponent gap ends where either of its two "
                                             "curves runs out of states seen at least twice"},
                           "fit": {"method": "ls", "weight": FIT_WEIGHT,
                                   "window": f"ranks {est['rank_lo']:,} to {est['rank_hi']:,} (first moves: to "
                                             f"{est['rank_hi_first']:,}; without late states: to "
                                             f"{est['rank_hi_early']:,})"},
                           "paper_window": paper_window,
                           "states": est["states"], "visits": est["visits"], "late_states": est["late_states"]}
    if math.isnan(est["late_share"]):
        res.update(measured=False, reason=f"too few states seen at least twice ({est['rank_hi']:,}) to reach the "
                                          f"shoulder range from rank {ranks[0]:,}: more games are needed")
        return res
    G = int(min(groups, n_games))
    reps = []
    if G >= 2:
        rng = np.random.default_rng(seed)
        group_of_visit = (rng.permutation(n_games) % G)[game_idx]
        for g in range(G):
            reps.append(evidence_stats(*per_state_arrays(state_idx, turn, shoulder_moves, group_of_visit != g,
                                                         n_states), late_turn, ranks, paper_window))
    z = float(norm.ppf((1 + level) / 2))
    stats: dict[str, Any] = {}
    for k, text in STAT_TEXT.items():
        v = est[k]
        se = math.nan
        if reps:
            s = np.array([r[k] for r in reps], float)
            if np.isfinite(s).all() and not math.isnan(v):
                se = float(math.sqrt((G - 1) / G * ((s - s.mean()) ** 2).sum()))
        stats[k] = {"value": v, "stderr": se, "ci_low": v - z * se, "ci_high": v + z * se, "meaning": text}
    res["stats"] = stats
    res["interval"] = {"method": "jackknife" if reps else "none", "groups": G, "resampled": "games",
                       "level": level, "rule": "estimate +- z * delete-a-group jackknife standard error"}

    def above(k):  # interval strictly above zero
        return bool(stats[k]["ci_low"] > 0) if reps else False

    same = _same_gap(stats)
    crit = {
        "late_share": {"holds": bool(stats["late_share"]["value"] >= 0.5 and above("late_excess")),
                       "test": "late share >= 0.5 at the shoulder ranks and its excess over the late share "
                               "of all visits above 0 (interval)"},
        "shoulder": {"holds": above("alpha_gap_first") and above("alpha_gap_late"),
                     "test": f"without the end game the curve is steeper over the shoulder ranks: the exponent gap "
                             f"of the first {shoulder_moves} moves and the gap without late states both above 0 "
                             "(intervals); one criterion, since both remove the same states where early and "
                             "late states separate",
                     "gaps_agree": same},
    }
    if not reps:
        for c in crit.values():
            c["test"] += "; not tested without an interval"
    n_hold = sum(c["holds"] for c in crit.values())
    res["criteria"] = crit
    res["held"] = n_hold
    res["criteria_count"] = len(crit)
    res["pattern"] = "present" if n_hold == len(crit) else "absent" if n_hold == 0 else "partial"
    res["measured"] = True
    return res


def _same_gap(stats: dict[str, Any]) -> bool | None:
    """Whether the two exponent gaps (without late states; first moves only) are one fact: each
    inside the other's interval. None when either is missing."""
    a, b = stats["alpha_gap_late"], stats["alpha_gap_first"]
    if any(_missing(x["value"]) or _missing(x["stderr"]) for x in (a, b)):
        return None
    return bool(a["ci_low"] <= b["value"] <= a["ci_high"] and b["ci_low"] <= a["value"] <= b["ci_high"])


def evidence_lines(eg: dict[str, Any]) -> list[str]:
    """Markdown bullet lines for an evidence record (zipf's summary, the verdict, the report)."""
    if not eg.get("applicable", True):
        return [f"- End-game evidence: {eg['reason']}."]
    if not eg.get("measured"):
        return [f"- End-game evidence not measured: {eg.get('reason', 'unknown reason')}."]
    s = eg["stats"]
    r = eg["ranks"]

    def v(k, nd=3):
        x = s[k]
        if x["value"] is None or (isinstance(x["value"], float) and math.isnan(x["value"])):
            return "n/a"
        ci = "" if _missing(x["stderr"]) else f" [{x['ci_low']:.{nd}f}, {x['ci_high']:.{nd}f}]"
        return f"{x['value']:.{nd}f}{ci}"

    c = eg["criteria"]
    yes = {True: "holds", False: "does not hold"}
    n = eg.get("criteria_count", len(c))
    lines = [
        f"- Shoulder ranks {r['lo']:,}–{r['hi']:,} ({r['rule']}); late = mean turn ≥ {eg['late_turn']:g}; "
        f"{eg['late_states']:,} late states of {eg['states']:,}; intervals: {eg['interval']['method']} over games "
        f"({eg['interval']['groups']} groups, {eg['interval']['level']:.0%}).",
        f"- Late share at those ranks {v('late_share')} against {v('late_share_visits')} of all visits: excess "
        f"{v('late_excess')} — **{yes[c['late_share']['holds']]}** ({c['late_share']['test']}).",
    ]
    if "exponent_without_late" in c:          # a fits.json of an azscale that counted the two gaps apart
        lines += [
            f"- LS exponent over those ranks ({eg['fit']['weight']}): all states {v('alpha_all')}, without late "
            f"states {v('alpha_early')}, gap {v('alpha_gap_late')} — **{yes[c['exponent_without_late']['holds']]}**.",
            f"- Shoulder test (first {eg['shoulder_moves']} moves of each game): exponent {v('alpha_first')}, gap "
            f"{v('alpha_gap_first')} — **{yes[c['shoulder']['holds']]}**.",
            f"- End-game pattern: **{eg['pattern']}** ({eg['held']} of {n} criteria hold; this record counts the "
            "exponent without late states and the first-moves exponent as two criteria, which are one fact where "
            "early and late states separate: rerun `azscale zipf`)."]
        return lines
    agree = c["shoulder"].get("gaps_agree")
    paper = eg.get("paper_window") or {}
    pw = s.get("alpha_gap_first_paper")
    lines += [
        f"- Without the end game (one criterion): LS exponent ({eg['fit']['weight']}) of all states {v('alpha_all')}; "
        f"first {eg['shoulder_moves']} moves {v('alpha_first')}, gap {v('alpha_gap_first')} (ranks {r['lo']:,}–"
        f"{r.get('hi_first', r['hi']):,}); without late states {v('alpha_early')}, gap {v('alpha_gap_late')} (ranks "
        f"{r['lo']:,}–{r.get('hi_early', r['hi']):,})"
        + ("; the two gaps agree (each inside the other's interval): one fact" if agree else
           "; the two gaps differ: early and late states do not separate cleanly" if agree is False else "")
        + f"; the all-moves curve lies {v('shoulder_height')} decades above the first-moves curve — "
        f"**{yes[c['shoulder']['holds']]}**.",
    ]
    if pw is not None and paper:
        lines.append(f"- The same first-moves gap in the paper's window ({_window_words(paper)}, each curve over its "
                     f"own ranks there): {v('alpha_gap_first_paper')} — for comparison, not a criterion (the gap "
                     "depends on the window).")
    lines.append(f"- End-game pattern: **{eg['pattern']}** ({eg['held']} of {n} criteria hold).")
    return lines


def _window_words(w: dict[str, Any]) -> str:
    from .zipf import fmt_count
    if w.get("kind") == "counts":
        return f"counts {fmt_count(w['lo'])} down to {fmt_count(w['hi'])}"
    return f"ranks {fmt_count(w.get('lo'))} to {fmt_count(w.get('hi'))}"


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


# --- figures --------------------------------------------------------------------------------

def _shade(ax, eg: dict[str, Any] | None) -> None:
    if eg and eg.get("measured"):
        ax.axvspan(eg["ranks"]["lo"], eg["ranks"]["hi"], color="0.85", alpha=0.5, lw=0,
                   label=f"shoulder ranks {eg['ranks']['lo']:,}–{eg['ranks']['hi']:,}")


def plot_late_share(tables: dict[str, pd.DataFrame], path_stem, threshold: float, subtitle: str = "",
                    eg: dict[str, Any] | None = None, visits_share: float | None = None) -> list[str]:
    """The paper's Fig. 6b: late share per log-rank bin, one line per curve."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.3))
    _shade(ax, eg)
    for (label, t), colour in zip(tables.items(), curve_colours(list(tables))):
        if len(t):
            mid = np.sqrt(t["rank_lo"] * t["rank_hi"])
            ax.semilogx(mid, t["late_share"], "o-", ms=3, color=colour, label=label)
    if visits_share is not None and not math.isnan(visits_share):
        ax.axhline(visits_share, color="k", ls=":", lw=1, label=f"late share of all visits ({visits_share:.2f})")
    ax.set_xlabel("rank")
    ax.set_ylabel(f"share of late states (mean turn ≥ {threshold:g})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("late-turn fraction vs rank" + (f"\n{subtitle}" if subtitle else ""), fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path_stem)


def plot_turn_vs_rank(counts: np.ndarray, mean_turn: np.ndarray, path_stem, threshold: float,
                      subtitle: str = "", eg: dict[str, Any] | None = None) -> list[str]:
    """The paper's Fig. 6a: each state's mean turn number against its rank (a 2-D histogram,
    so that millions of states stay legible), with the mean per log-rank bin."""
    from matplotlib.colors import LogNorm
    plt = pyplot()
    n = len(counts)
    fig, ax = plt.subplots(figsize=(7, 4.3))
    x = np.log10(np.arange(1, n + 1))
    mt = np.asarray(mean_turn, float)
    xb = np.linspace(0, max(x[-1], 1e-9), 80)
    yb = np.linspace(0, max(mt.max(), threshold) * 1.02 + 1, 80)
    h, _, _ = np.histogram2d(x, mt, bins=[xb, yb])
    im = ax.pcolormesh(10 ** xb, yb, h.T, norm=LogNorm(vmin=1, vmax=max(h.max(), 2)), cmap="Greys", shading="flat")
    t = late_share_by_rank(counts, mean_turn, threshold)
    ax.plot(np.sqrt(t["rank_lo"] * t["rank_hi"]), t["mean_turn"], "o-", color="C0", ms=3,
            label="mean per rank bin")
    ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"late turn {threshold:g}")
    _shade(ax, eg)
    ax.set_xscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("mean turn number of the state")
    ax.set_title("turn number vs rank" + (f"\n{subtitle}" if subtitle else ""), fontsize=8)
    fig.colorbar(im, ax=ax, label="states")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save(fig, path_stem)


def plot_shoulder_curves(curves: list[tuple[str, np.ndarray]], path_stem, eg: dict[str, Any] | None,
                         subtitle: str = "") -> list[str]:
    """The paper's Fig. 5 (right): the Zipf curve of all states, without late states, and of
    the first moves only, with the exponents over the shoulder ranks."""
    from .zipf import plot_points, rank_frequency
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    _shade(ax, eg)
    stat_of = {0: "alpha_all", 1: "alpha_early", 2: "alpha_first"}
    for k, ((label, counts), colour, ls) in enumerate(zip(curves, ("k", "C1", "C0"), ("-", "-", "--"))):
        sc = rank_frequency(counts)
        if not len(sc):
            continue
        idx = plot_points(sc)
        if eg and eg.get("measured") and k in stat_of:
            s = eg["stats"][stat_of[k]]
            if s["value"] is not None and not math.isnan(s["value"]):
                label += f"; α={s['value']:.3f}" + ("" if _missing(s["stderr"]) else
                                                    f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
        ax.loglog(idx + 1, sc[idx], ls, lw=1.2, color=colour, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("visit count")
    fit = f"LS {FIT_WEIGHT} over the shaded ranks" if eg and eg.get("measured") else ""
    ax.set_title("with and without late states, and first moves only" + (f"\n{subtitle}" if subtitle else "")
                 + (f"; {fit}" if fit else ""), fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return save(fig, path_stem)


# --- boards -------------------------------------------------------------------------------

def _parse_oware(text: str):
    import re
    rows = [ln for ln in text.splitlines() if re.fullmatch(r"\s*(\d+\s+)+\d+\s*", ln)]
    scores = [int(x) for x in re.findall(r"Player \d score = (\d+)", text)]
    names = re.findall(r"Player (\d) score", text)
    if len(rows) != 2 or len(scores) != 2:
        return None
    top, bottom = ([int(x) for x in r.split()] for r in rows)
    score = dict(zip((int(n) for n in names), scores))
    return top, bottom, score


def _draw_oware(ax, text: str) -> bool:
    parsed = _parse_oware(text)
    if parsed is None:
        return False
    top, bottom, score = parsed
    from matplotlib.patches import Circle, FancyBboxPatch
    ax.add_patch(FancyBboxPatch((-0.5, -0.6), len(top), 2.2, boxstyle="round,pad=0.1", color="#c9a66b"))
    for row, y in ((top, 1.0), (bottom, 0.0)):
        for i, seeds in enumerate(row):
            ax.add_patch(Circle((i, y), 0.38, color="#8b5a2b"))
            ax.text(i, y, str(seeds), ha="center", va="center", color="white", fontsize=9, weight="bold")
    ax.text(-0.4, 1.75, f"player 1 (top) score {score.get(1, '?')}", fontsize=6, va="bottom")
    ax.text(-0.4, -0.75, f"player 0 (bottom) score {score.get(0, '?')}", fontsize=6, va="top")
    ax.set_xlim(-0.8, len(top) - 0.2)
    ax.set_ylim(-1.2, 2.2)
    return True


CHECKERS_PIECES = {"o": ("w", False), "8": ("w", True), "+": ("k", False), "*": ("k", True)}


def _draw_checkers(ax, text: str) -> bool:
    """OpenSpiel's checkers text: 'o'/'8' man/king of the first player, '+'/'*' of the second."""
    rows = [ln for ln in text.splitlines() if ln[:1].isdigit()]
    if not rows or any(len(r) < 2 for r in rows):
        return False
    n, m = len(rows), len(rows[0]) - 1
    from matplotlib.patches import Circle, Rectangle
    for i, r in enumerate(rows):
        y = n - 1 - i
        for j, ch in enumerate(r[1:]):
            ax.add_patch(Rectangle((j, y), 1, 1, color="#b58863" if (i + j) % 2 else "#f0d9b5"))
            if ch in CHECKERS_PIECES:
                colour, king = CHECKERS_PIECES[ch]
                ax.add_patch(Circle((j + 0.5, y + 0.5), 0.38, facecolor=colour, edgecolor="0.3", lw=0.8))
                if king:
                    ax.text(j + 0.5, y + 0.5, "K", ha="center", va="center", fontsize=7,
                            color="k" if colour == "w" else "w", weight="bold")
    ax.set_xlim(0, m)
    ax.set_ylim(0, n)
    return True


def _draw_text(ax, text: str) -> bool:
    ax.text(0.02, 0.98, text.rstrip("\n"), family="monospace", fontsize=6, va="top", ha="left",
            transform=ax.transAxes)
    return True


def plot_late_boards(game: str, boards: list[dict[str, Any]], path_stem, subtitle: str = "") -> list[str]:
    """The most frequent late states drawn as boards: oware pits with their seed counts,
    checkers boards (white = first player, K = king), any other game as its OpenSpiel text.
    `boards`: {rank, count, mean_turn, text, player}."""
    from ..config import base_name
    plt = pyplot()
    draw = {"oware": _draw_oware, "checkers": _draw_checkers}.get(base_name(game), _draw_text)
    k = len(boards)
    cols = min(5, k)
    rows = int(math.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, b in zip(axes.ravel(), boards):
        ax.set_aspect("equal" if draw is not _draw_text else "auto")
        if not draw(ax, b["text"]):
            _draw_text(ax, b["text"])
        ax.set_title(f"rank {b['rank']:,}: {b['count']:,} visits\nmean turn {b['mean_turn']:.0f}, "
                     f"player {b['player']} to move", fontsize=7)
    fig.suptitle(f"{game}: the {k} most frequent late states" + (f"\n{subtitle}" if subtitle else ""), fontsize=8)
    fig.tight_layout()
    return save(fig, path_stem)
