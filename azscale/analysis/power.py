"""The verdict's power: the smallest fall after the peak that it detects with 80% probability.

A "no inverse scaling shown" means little unless the reader knows what the test could have
seen. This module simulates the verdict's own test (verdict.py) on a study's design and finds
the minimum detectable effect (MDE): the fall, in Elo from the peak to the largest size, that
gives an "Inverse scaling detected" headline in 80% of simulated studies.

The planted truth. Size k's mean strength rises by `rise` Elo per size step up to the peak
(by default the middle size, index (K - 1) // 2), then falls linearly to the largest size,
which sits `fall` Elo below the peak. Each seed's strength is its size's mean plus
N(0, seed_sd^2) (seed_sd: the spread of agents' true strengths, without game noise).

One simulated study:
1. game noise: the fitted ratings are the true ones plus a Gaussian error whose covariance is
   the inverse Fisher information of the rating model (elo.py: Bradley-Terry with a first-move
   term and a draw width) for a full round-robin of `games_per_pair` games per pair, seats
   alternating, at the planted strengths (the ratings, the first-move advantage and the draw
   width fitted jointly; anchored on one agent; the other players of a real tournament, such as
   random play or within-run checkpoints, are left out, which makes the noise slightly larger
   than a real study's);
2. the verdict's test on those ratings, as verdict.py runs it: size means, the pooled seed
   deviations (scaled by sqrt(n / (n - 1))), every size step and every smaller size against the
   largest with a one-sided p-value of "no drop", Holm's step-down correction at `fwer`, the
   peak = the highest observed mean, "detected" = the peak against the largest flagged. The
   bootstrap p-value is replaced by its value for infinitely many replicates: the hierarchical
   bootstrap's difference of two size means is game noise (Gaussian, the same covariance) plus
   the mean of the drawn seed deviations times sqrt(df / chi2_df), taken as Gaussian with the
   pooled spread; its tail probability is integrated over the chi-square (64 quantiles).
   tests/test_power.py checks these p-values against the bootstrap's and the MDE against full
   simulations (games played, ratings refitted, `inverse_scaling` run).

Designs with fewer than two seeds at some size cannot give a verdict (verdict.py: "cannot
tell"), so their power is not applicable.

The MDE is found by bisection on the fall with common random numbers (the same simulated
seeds and games at every fall). Its Monte-Carlo error: the binomial error of the power at the
MDE, sqrt(0.8 * 0.2 / S), divided by the slope of the power curve there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError

TARGET_POWER = 0.8
DEFAULT_SIMS = 400
DEFAULT_RISE = 150.0
CHI_QUANTILES = 64
MAX_FALL = 4000.0


@dataclass
class Design:
    params: list[int]                # distinct sizes, ascending
    seeds: list[int]                 # seeds per size
    games_per_pair: int
    seed_sd: float                   # Elo: spread of a seed's true strength around its size's mean
    first_move: float = 30.0         # Elo
    draw_width: float = 100.0        # Elo
    rise: float = DEFAULT_RISE       # Elo per size step up to the peak
    peak_index: int | None = None    # default: the middle size
    fwer: float = 0.05

    def __post_init__(self):
        self.params = [int(p) for p in self.params]
        if isinstance(self.seeds, (int, np.integer)):
            self.seeds = [int(self.seeds)] * len(self.params)
        self.seeds = [int(s) for s in self.seeds]
        K = len(self.params)
        if K < 2:
            raise UserError("power needs at least two model sizes")
        if sorted(set(self.params)) != self.params:
            raise UserError("the sizes must be distinct and ascending")
        if len(self.seeds) != K or min(self.seeds) < 1:
            raise UserError("one seed count (>= 1) per size is needed")
        if not (isinstance(self.games_per_pair, (int, np.integer)) and self.games_per_pair >= 2):
            raise UserError(f"games per pair must be a whole number >= 2, got {self.games_per_pair!r}")
        for name in ("seed_sd", "first_move", "draw_width", "rise"):
            v = getattr(self, name)
            if not math.isfinite(v) or (name in ("seed_sd", "draw_width") and v < 0):
                raise UserError(f"{name.replace('_', ' ')} must be a finite number"
                                + (" >= 0" if name in ("seed_sd", "draw_width") else "") + f", got {v!r}")
        if self.peak_index is None:
            self.peak_index = (K - 1) // 2
        if not 0 <= self.peak_index < K - 1:
            raise UserError("the planted peak must be below the largest size (a fall needs a size after it)")
        if not 0 < self.fwer < 0.5:
            raise UserError(f"the family-wise error rate must be in (0, 0.5), got {self.fwer}")

    @property
    def decidable(self) -> bool:
        return min(self.seeds) >= 2

    def means(self, fall: float) -> np.ndarray:
        K, p = len(self.params), self.peak_index
        k = np.arange(K, dtype=float)
        up = self.rise * np.minimum(k, p)
        down = np.where(k > p, fall * (k - p) / (K - 1 - p), 0.0)
        return up - down

    def describe(self) -> str:
        seeds = (f"{self.seeds[0]} seed{'s' if self.seeds[0] != 1 else ''} per size" if len(set(self.seeds)) == 1
                 else "seeds per size " + ", ".join(map(str, self.seeds)))
        return (f"{len(self.params)} sizes ({self.params[0]:,} to {self.params[-1]:,} parameters), {seeds}, "
                f"{self.games_per_pair:,} games per pair, seed spread {self.seed_sd:,.0f} Elo, first move "
                f"{self.first_move:+,.0f} Elo, draw width {self.draw_width:,.0f} Elo")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- game noise ---------------------------------------------------------------------------

def _outcome_probs(d: np.ndarray, D: float) -> np.ndarray:
    pw = 1 / (1 + 10 ** ((D - d) / 400))
    pl = 1 / (1 + 10 ** ((D + d) / 400))
    return np.stack([pw, np.clip(1 - pw - pl, 1e-12, 1), pl], -1)


def game_covariance(ratings: np.ndarray, games_per_pair: int, first_move: float, draw_width: float) -> np.ndarray:
    """Covariance of the fitted ratings (Elo^2; agent 0 anchored at 0) for a full round-robin
    of `games_per_pair` games per pair, half with each player first: the inverse Fisher
    information of ratings, first-move advantage and draw width (fitted jointly)."""
    r = np.asarray(ratings, float)
    P = len(r)
    i, j = np.nonzero(~np.eye(P, dtype=bool))
    n = games_per_pair / 2.0
    d = r[i] + first_move - r[j]
    D = max(draw_width, 1e-6)
    h = 1e-3
    p = _outcome_probs(d, D)
    dp_dd = (_outcome_probs(d + h, D) - _outcome_probs(d - h, D)) / (2 * h)
    dp_dD = (_outcome_probs(d, D + h) - _outcome_probs(d, D - h)) / (2 * h)
    # parameters: ratings 0..P-1, first move P, draw width P+1
    J = np.zeros((len(i), P + 2, 3))
    rows = np.arange(len(i))
    J[rows, i] += dp_dd
    J[rows, j] -= dp_dd
    J[:, P] += dp_dd
    J[:, P + 1] += dp_dD
    info = n * np.einsum("kac,kbc->ab", J / p[:, None, :], J)
    keep = np.r_[1:P, P, P + 1]                       # agent 0 is the anchor
    cov = np.zeros((P, P))
    cov[1:, 1:] = np.linalg.inv(info[np.ix_(keep, keep)])[:P - 1, :P - 1]
    return cov


# --- the verdict's test, vectorised over studies -------------------------------------------

def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis."""
    m = p.shape[-1]
    order = np.argsort(p, -1, kind="stable")
    ps = np.take_along_axis(p, order, -1) * (m - np.arange(m))
    ps = np.minimum(np.maximum.accumulate(ps, -1), 1.0)
    out = np.empty_like(ps)
    np.put_along_axis(out, order, ps, -1)
    return out


def family(K: int) -> list[tuple[int, int]]:
    """The verdict's comparisons (smaller, larger): every step, then every size below the
    second-largest against the largest."""
    return [(j, j + 1) for j in range(K - 1)] + [(j, K - 1) for j in range(K - 2)]


def bootstrap_p(delta: np.ndarray, game_var: np.ndarray, seed_var: np.ndarray, df: int) -> np.ndarray:
    """P(delta* >= 0) for the bootstrap difference delta* = delta + game noise + seed part, with
    the seed part Gaussian of variance seed_var * df / chi2_df (the chi-square integrated over
    CHI_QUANTILES quantiles): the bootstrap p-value for infinitely many replicates."""
    from scipy.stats import chi2, norm
    if df > 0:
        q = chi2.ppf((np.arange(CHI_QUANTILES) + 0.5) / CHI_QUANTILES, df)
        scale2 = df / q
    else:
        scale2 = np.ones(1)
    sd = np.sqrt(game_var[..., None] + seed_var[..., None] * scale2)
    return norm.cdf(delta[..., None] / np.maximum(sd, 1e-9)).mean(-1)


def family_p(est: np.ndarray, size_of: np.ndarray, seeds: np.ndarray,
             game_cov_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Size means [S, K] and the one-sided p-values of the verdict's family [S, 2K - 3] (in the
    order of `family`) for fitted ratings `est` [S, agents]; `size_of`: each agent's size
    index; `game_cov_k`: covariance of the size means' game noise [K, K]."""
    K = len(seeds)
    onehot = np.eye(K)[size_of]                                   # [agents, K]
    m = est @ onehot / seeds                                      # size means [S, K]
    dev = (est - m[:, size_of]) * np.sqrt(seeds / np.maximum(seeds - 1, 1))[size_of]
    multi = seeds[size_of] > 1
    s2 = (dev[:, multi] ** 2).mean(1) if multi.any() else np.zeros(len(est))
    df = int((seeds - 1).sum())
    fam = family(K)
    a = np.array([x for x, _ in fam])
    b = np.array([y for _, y in fam])
    delta = m[:, b] - m[:, a]
    gv = game_cov_k[b, b] + game_cov_k[a, a] - 2 * game_cov_k[a, b]
    sv = s2[:, None] * (1 / seeds[a] + 1 / seeds[b])[None, :]
    return m, bootstrap_p(delta, np.broadcast_to(gv, delta.shape), sv, df)


def decisions(est: np.ndarray, size_of: np.ndarray, seeds: np.ndarray, game_cov_k: np.ndarray,
              fwer: float) -> np.ndarray:
    """Whether the verdict detects inverse scaling in each simulated study (arguments as for
    family_p)."""
    K = len(seeds)
    m, p = family_p(est, size_of, seeds, game_cov_k)
    adj = _holm(p)
    peak = m.argmax(1)
    # the comparison of the peak against the largest: the last step for the second-largest
    idx = np.where(peak == K - 2, K - 2, (K - 1) + np.minimum(peak, K - 3))
    hit = adj[np.arange(len(est)), idx] <= fwer
    return hit & (peak < K - 1)


@dataclass
class Simulator:
    """Common random numbers for one design: the same simulated seeds and games at every fall."""
    design: Design
    sims: int = DEFAULT_SIMS
    seed: int = 0
    _cache: dict = field(default_factory=dict)

    def __post_init__(self):
        d = self.design
        self.size_of = np.repeat(np.arange(len(d.params)), d.seeds)
        rng = np.random.default_rng(self.seed)
        self.z_seed = rng.standard_normal((self.sims, len(self.size_of)))
        self.z_game = rng.standard_normal((self.sims, len(self.size_of)))

    def power(self, fall: float) -> float:
        return float(self.hits(fall).mean())

    def hits(self, fall: float) -> np.ndarray:
        """Detected or not, per simulated study; never with fewer than two seeds at some size
        (the verdict then cannot tell)."""
        if not self.design.decidable:
            return np.zeros(self.sims, bool)
        key = round(float(fall), 6)
        if key not in self._cache:
            d = self.design
            mu = d.means(fall)[self.size_of]
            cov = game_covariance(mu, d.games_per_pair, d.first_move, d.draw_width)
            w, v = np.linalg.eigh(cov)
            L = v * np.sqrt(np.clip(w, 0, None))
            est = mu + d.seed_sd * self.z_seed + self.z_game @ L.T
            seeds = np.asarray(d.seeds, float)
            A = np.eye(len(seeds))[self.size_of] / seeds[self.size_of][:, None]     # [agents, K]
            self._cache[key] = decisions(est, self.size_of, seeds, A.T @ cov @ A, d.fwer)
        return self._cache[key]


@dataclass
class Power:
    design: Design
    applicable: bool
    reason: str = ""
    mde: float = math.nan            # Elo fall from the peak to the largest at TARGET_POWER
    mde_mc_se: float = math.nan
    power_at: dict[float, float] = field(default_factory=dict)
    sims: int = 0
    censored: bool = False           # the MDE exceeds MAX_FALL
    spread_upper: dict[str, Any] | None = None    # the MDE at the top of the seed spread's interval

    def to_dict(self) -> dict[str, Any]:
        d = {"applicable": self.applicable, "design": self.design.to_dict(), "target_power": TARGET_POWER}
        if not self.applicable:
            return {**d, "reason": self.reason}
        return {**d, "minimum_detectable_fall": None if self.censored else self.mde,
                "minimum_detectable_fall_mc_se": None if self.censored else self.mde_mc_se,
                "above": MAX_FALL if self.censored else None,
                "power_at": {f"{k:g}": v for k, v in self.power_at.items()}, "simulations": self.sims,
                "planted": self.planted(), "method": METHOD, "at_seed_spread_upper": self.spread_upper}

    def planted(self) -> str:
        d = self.design
        return (f"a rise of {d.rise:,.0f} Elo per size step up to {d.params[d.peak_index]:,} parameters, then a "
                f"linear fall to the largest size")

    def sentence(self) -> str:
        if not self.applicable:
            return f"Power: not applicable ({self.reason})."
        if self.censored:
            return (f"Power: even a fall of {MAX_FALL:,.0f} Elo would be detected in fewer than "
                    f"{TARGET_POWER:.0%} of simulated studies of this design.")
        return (f"Smallest fall detectable with {TARGET_POWER:.0%} power: **{self.mde:,.0f} Elo** from the peak "
                f"to the largest size (Monte-Carlo error ±{self.mde_mc_se:,.0f} Elo, {self.sims:,} simulated "
                f"studies; planted: {self.planted()}; {self.design.describe()}). Smaller falls would mostly go "
                "unseen." + self._upper())

    def _upper(self) -> str:
        u = self.spread_upper
        if not u:
            return ""
        m = (f"{u['minimum_detectable_fall']:,.0f} Elo" if u["minimum_detectable_fall"] is not None
             else f"more than {MAX_FALL:,.0f} Elo")
        return (f" The seed spread is itself estimated ({u['df']} degrees of freedom): at the top of its "
                f"{u['level']:.0%} interval ({u['seed_sd']:,.0f} Elo) the detectable fall is {m}.")


METHOD = ("the verdict's test (Holm over every step and every size against the largest, pooled seed spread) on "
          "simulated studies: seed strengths N(mean, seed_sd^2), game noise from the rating model's Fisher "
          "information for a full round-robin, bootstrap p-values for infinitely many replicates; common random "
          "numbers across falls; bisection (power.py)")


def detectable_fall(design: Design, sims: int = DEFAULT_SIMS, seed: int = 0, target: float = TARGET_POWER,
                    tol: float = 1.0, extra: Sequence[float] = ()) -> Power:
    """The smallest fall (Elo, peak to largest) detected with probability `target`."""
    if not design.decidable:
        return Power(design, False, reason="fewer than two seeds at some size: the verdict cannot tell, whatever "
                                           "the fall (run at least two seeds per size)")
    if not 50 <= sims <= 100_000:
        raise UserError(f"power simulations must be between 50 and 100,000, got {sims}")
    sim = Simulator(design, sims, seed)
    lo, hi = 0.0, 100.0
    while sim.power(hi) < target:
        lo, hi = hi, hi * 2
        if hi > MAX_FALL:
            return Power(design, True, sims=sims, censored=True, power_at={MAX_FALL: sim.power(MAX_FALL)})
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if sim.power(mid) >= target:
            hi = mid
        else:
            lo = mid
    mde = hi
    # the power curve's slope at the MDE (over +-15%) turns the power's binomial error into Elo
    h = max(0.15 * mde, 5.0)
    slope = (sim.power(mde + h) - sim.power(max(mde - h, 0.0))) / (mde + h - max(mde - h, 0.0))
    se_p = math.sqrt(target * (1 - target) / sims)
    mc = se_p / slope if slope > 0 else math.inf
    at = {float(x): sim.power(x) for x in extra}
    at[round(mde)] = sim.power(round(mde))
    return Power(design, True, mde=float(mde), mde_mc_se=float(mc), power_at=at, sims=sims)


def seed_sd_from_study(pooled_sd: float, game_dev_var: float) -> float:
    """The spread of agents' true strengths: the pooled spread of fitted ratings less the game
    noise of a seed's deviation from its size mean (never below 0)."""
    return math.sqrt(max(pooled_sd ** 2 - game_dev_var, 0.0))


# --- the planner ------------------------------------------------------------------------------

def plan(design: Design, fall: float, sims: int = DEFAULT_SIMS, seed: int = 0,
         seeds_options: Sequence[int] = (2, 3, 4, 6), games_factors: Sequence[float] = (0.5, 1, 2, 4)) -> dict[str, Any]:
    """Power at `fall` for the design and for other seeds x games per pair, and the design's MDE."""
    if not (math.isfinite(fall) and fall > 0):
        raise UserError(f"the fall to plan for must be a positive number of Elo, got {fall!r}")
    own = detectable_fall(design, sims, seed, extra=(fall,))
    grid = []
    for s in sorted(set(seeds_options) | {design.seeds[0]}):
        if s < 2:
            continue                       # one seed: the verdict cannot tell (no power to plan)
        for f in games_factors:
            g = max(2, int(round(design.games_per_pair * f / 2)) * 2)
            d = Design(**{**design.to_dict(), "seeds": [s] * len(design.params), "games_per_pair": g})
            grid.append({"seeds": s, "games_per_pair": g, "power": Simulator(d, sims, seed).power(fall)})
    enough = [r for r in grid if r["power"] >= TARGET_POWER]
    cheapest = min(enough, key=lambda r: (r["seeds"] * len(design.params), r["games_per_pair"])) if enough else None
    return {"design": design.to_dict(), "fall": fall, "own": own.to_dict(), "own_sentence": own.sentence(),
            "power_at_fall": own.power_at.get(float(fall), math.nan) if own.applicable else None,
            "grid": grid, "cheapest": cheapest, "simulations": sims,
            "mc_se_of_power": math.sqrt(TARGET_POWER * (1 - TARGET_POWER) / sims), "method": METHOD}


PLAN_TITLE = "# Power plan: "


def _is_plan_json(d: Any) -> bool:
    return isinstance(d, dict) and {"design", "fall", "own", "grid", "cheapest", "method"} <= d.keys()


def claim_plan_files(out: Path) -> Path:
    """The plan's JSON path beside `out` (verdict --plan --out), after refusing to overwrite
    anything that is not a plan azscale wrote, as `claim_verdict_files`."""
    from .. import runs
    return runs.claim_markdown_and_json(out, "power plan", PLAN_TITLE, _is_plan_json, "plan.md")


def plan_markdown(res: dict[str, Any]) -> str:
    d = res["design"]
    lines = [f"{PLAN_TITLE}a fall of {res['fall']:,.0f} Elo after the peak", "",
             f"Design: {Design(**d).describe()}.", "", res["own_sentence"], ""]
    if res["power_at_fall"] is not None:
        lines.append(f"Power of this design at a {res['fall']:,.0f}-Elo fall: **{res['power_at_fall']:.0%}**.")
    lines += ["", f"Power at a {res['fall']:,.0f}-Elo fall for other designs (same sizes; {res['simulations']:,} "
                  f"simulated studies each, Monte-Carlo error about ±{res['mc_se_of_power']:.0%} near 80%):", "",
              "| seeds per size | games per pair | power |", "| ---: | ---: | ---: |"]
    for r in res["grid"]:
        lines.append(f"| {r['seeds']} | {r['games_per_pair']:,} | {r['power']:.1%} |")
    c = res["cheapest"]
    lines += ["", (f"Fewest agents reaching {TARGET_POWER:.0%}: {c['seeds']} seeds per size with "
                   f"{c['games_per_pair']:,} games per pair." if c else
                   f"No design in this table reaches {TARGET_POWER:.0%}: more seeds (the seed spread dominates) or "
                   "a larger fall are needed."), "", f"Method: {res['method']}."]
    return "\n".join(lines) + "\n"
