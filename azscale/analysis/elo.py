"""Elo ratings by Bradley-Terry maximum likelihood on real win/draw/loss counts.

Model (BayesElo's, Coulom 2005): when player i moves first against j, with
d = r_i + a - r_j (a = first-move advantage) and D = the draw width, all in Elo points,
    P(i wins)  = 1 / (1 + 10^((D - d) / 400))
    P(j wins)  = 1 / (1 + 10^((D + d) / 400))
    P(draw)    = 1 - P(i wins) - P(j wins).
Ratings, a and D are fitted jointly by maximum likelihood over every ordered pair's counts, so
fixed-checkpoint and within-run round-robins share one fit when their results are pooled. A
weak Gaussian prior on ratings (sd 2000 Elo) keeps ratings finite for a player that never lost
or never won; it moves well-determined ratings by far less than their uncertainty. Ratings are
reported relative to an anchor (rating 0), with bootstrap intervals from resampling each
pair's games.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..errors import UserError

LN10_400 = math.log(10) / 400
PRIOR_SD = 2000.0


@dataclass
class EloFit:
    players: list[str]
    ratings: np.ndarray            # Elo, anchor = 0
    first_move: float              # Elo advantage of moving first
    draw_width: float              # D, Elo
    anchor: str
    ci_low: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ci_high: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stderr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first_move_ci: tuple[float, float] = (math.nan, math.nan)
    bootstrap: int = 0
    samples: np.ndarray | None = None   # bootstrap ratings [reps, players]

    def table(self) -> pd.DataFrame:
        df = pd.DataFrame({"player": self.players, "elo": self.ratings})
        if self.bootstrap:
            df["elo_ci_low"], df["elo_ci_high"], df["elo_se"] = self.ci_low, self.ci_high, self.stderr
        return df


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _nll(params, i, j, w, d, l, n, anchor_idx):
    r = np.insert(params[:n - 1], anchor_idx, 0.0)
    a, D = params[n - 1], params[n]
    diff = (r[i] + a - r[j]) * LN10_400
    Ds = D * LN10_400
    lw = _log_sigmoid(diff - Ds)                 # log P(first wins)
    ll = _log_sigmoid(-diff - Ds)                # log P(second wins)
    pw, pl = np.exp(lw), np.exp(ll)
    pd_ = np.clip(1.0 - pw - pl, 1e-300, 1.0)
    nll = -(w * lw + l * ll + d * np.log(pd_)).sum() + 0.5 * (r ** 2).sum() / PRIOR_SD ** 2
    # gradient
    sw = 1 - pw                                   # d lw / d(diff - Ds)
    sl = 1 - pl
    # d log pd / d diff and d Ds (pd = 1 - pw - pl)
    dpw_dx = pw * (1 - pw)
    dpl_dx = pl * (1 - pl)
    dlogpd_ddiff = (-dpw_dx + dpl_dx) / pd_
    dlogpd_dD = (dpw_dx + dpl_dx) / pd_
    g_diff = -(w * sw - l * sl + d * dlogpd_ddiff) * LN10_400
    g_D = -(-w * sw - l * sl + d * dlogpd_dD) * LN10_400
    gr = np.bincount(i, weights=g_diff, minlength=n) - np.bincount(j, weights=g_diff, minlength=n)
    gr += r / PRIOR_SD ** 2
    grad = np.r_[np.delete(gr, anchor_idx), g_diff.sum(), g_D.sum()]
    return nll, grad


def _fit_once(i, j, w, d, l, n, anchor_idx, start=None):
    x0 = np.zeros(n + 1) if start is None else start
    if start is None:
        x0[n] = 100.0 if d.sum() > 0 else 0.0
    bounds = [(None, None)] * n + [(0.0, 4000.0)]
    res = minimize(_nll, x0, args=(i, j, w, d, l, n, anchor_idx), jac=True, method="L-BFGS-B",
                   bounds=bounds, options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-9})
    return res.x


def pair_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Sum results to one row per ordered pair (first, second) with wins/draws/losses of first."""
    need = {"first", "second", "wins", "draws", "losses"}
    if not need <= set(results.columns):
        raise UserError(f"match results need columns {sorted(need)}, got {sorted(results.columns)}")
    return results.groupby(["first", "second"], as_index=False)[["wins", "draws", "losses"]].sum()


def fit_elo(results: pd.DataFrame, anchor: str | None = None, bootstrap: int = 0, seed: int = 0,
            level: float = 0.95) -> EloFit:
    """Fit ratings to ordered-pair counts: columns first, second, wins, draws, losses (wins and
    losses from the first mover's point of view)."""
    pc = pair_counts(results)
    players = sorted(set(pc["first"]) | set(pc["second"]))
    if len(players) < 2:
        raise UserError("Elo needs results between at least two players")
    anchor = players[0] if anchor is None else anchor
    if anchor not in players:
        raise UserError(f"anchor '{anchor}' is not among the players ({', '.join(players[:8])}...)")
    idx = {p: k for k, p in enumerate(players)}
    i = pc["first"].map(idx).to_numpy()
    j = pc["second"].map(idx).to_numpy()
    w, d, l = (pc[c].to_numpy(float) for c in ("wins", "draws", "losses"))
    n, a_idx = len(players), idx[anchor]
    x = _fit_once(i, j, w, d, l, n, a_idx)
    fit = EloFit(players, np.insert(x[:n - 1], a_idx, 0.0), float(x[n - 1]), float(x[n]), anchor)
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        tot = (w + d + l).astype(int)
        probs = np.stack([w, d, l], 1) / np.maximum(tot, 1)[:, None]
        samples, adv = [], []
        for _ in range(bootstrap):
            draw = np.array([rng.multinomial(t, p) if t else (0, 0, 0) for t, p in zip(tot, probs)], float)
            xb = _fit_once(i, j, draw[:, 0], draw[:, 1], draw[:, 2], n, a_idx, start=x.copy())
            samples.append(np.insert(xb[:n - 1], a_idx, 0.0))
            adv.append(xb[n - 1])
        s = np.array(samples)
        q = [(1 - level) * 50, (1 + level) * 50]
        fit.samples = s
        fit.bootstrap = bootstrap
        fit.ci_low, fit.ci_high = np.percentile(s, q[0], axis=0), np.percentile(s, q[1], axis=0)
        fit.stderr = s.std(0, ddof=1)
        fit.first_move_ci = tuple(float(v) for v in np.percentile(adv, q))
    return fit


def expected_score(ra: float, rb: float, a: float = 0.0, D: float = 0.0) -> tuple[float, float, float]:
    """P(win), P(draw), P(loss) for a first mover rated ra against rb under the model."""
    d = ra + a - rb
    pw = 1 / (1 + 10 ** ((D - d) / 400))
    pl = 1 / (1 + 10 ** ((D + d) / 400))
    return pw, 1 - pw - pl, pl


def simulate_results(ratings: Sequence[float], games_per_pair: int, first_move: float, draw_width: float,
                     seed: int = 0) -> pd.DataFrame:
    """Synthetic round-robin with known ratings (seats alternate: half the games each way)."""
    rng = np.random.default_rng(seed)
    rows = []
    names = [f"p{k}" for k in range(len(ratings))]
    for x in range(len(ratings)):
        for y in range(len(ratings)):
            if x == y:
                continue
            n = games_per_pair // 2
            pw, pd_, pl = expected_score(ratings[x], ratings[y], first_move, draw_width)
            wdl = rng.multinomial(n, np.clip([pw, pd_, pl], 0.0, 1.0) / (pw + max(pd_, 0.0) + pl))
            rows.append({"first": names[x], "second": names[y], "wins": wdl[0], "draws": wdl[1], "losses": wdl[2]})
    return pd.DataFrame(rows)


def score_matrix(results: pd.DataFrame, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Points (win 1, draw ½) of the row player against the column player and the games they
    played, summed over every row of `results` (first, second, wins, draws, losses: a
    tournament's results), players in the order of `names`."""
    idx = {p: k for k, p in enumerate(names)}
    points = np.zeros((len(names), len(names)))
    games = np.zeros_like(points)
    for r in results.itertuples():
        i, j = idx[r.first], idx[r.second]
        n = r.wins + r.draws + r.losses
        points[i, j] += r.wins + 0.5 * r.draws
        games[i, j] += n
        points[j, i] += r.losses + 0.5 * r.draws
        games[j, i] += n
    return points, games
