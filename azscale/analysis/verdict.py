"""The inverse-scaling verdict (PAPER.md section 7).

Is a larger model weaker, and is it the end game?

The test. Size means (mean Elo over a size's seeds) and every derived number come from one
hierarchical bootstrap (sizeboot.py: games resampled within pairs and seeds within sizes,
together). The family of hypotheses:
- every size step: H0 "the next larger size is not weaker" (one-sided);
- every smaller size against the largest: H0 "the largest is not weaker than it".
Each gets a bootstrap p-value (the share of replicates in which the difference is not
negative); Holm's step-down correction holds the family-wise error at `fwer` (5%) under any
dependence between the comparisons. The best size (the peak: the highest mean Elo) against the
largest is one member of that family, so testing it directly needs no separate selection
correction. The peak is reported with the bootstrap distribution of the argmax; alpha_N is
fitted up to the peak, with the same replicates giving its interval (the peak re-chosen in every
replicate).

Conditions. A verdict is given only when every condition on the runs holds (`CONDITIONS`, one
function each, so that another per-run condition is one more entry): today, at least two seeds
at every size. One seed per size measures no seed-to-seed spread, and a fall between single
agents is as likely a difference between two agents as between two sizes; the headline is then
"cannot tell", whatever the p-values.

The fall. A detected fall is reported as measured (peak minus largest) and corrected for
choosing the peak from the same data (the winner's curse): the bootstrap bias correction with
the peak re-chosen in every replicate, 2 F - mean(F*), with F* = max over sizes of a
replicate's means minus its largest size's, and the basic bootstrap interval
[2 F - q_hi(F*), 2 F - q_lo(F*)].

Power. Beside every verdict: the smallest fall after the peak that this design detects with 80%
probability (power.py: the same test on simulated studies of the same sizes, seeds, games per
pair, seed spread, first-move advantage and draw width).

Attribution. A drop is tied to the paper's mechanism only by what was measured: the end-game
evidence of `azscale zipf` (endgame.py: late share at ranks 10^2-10^4, exponents with and
without late states, the first-moves shoulder test) and the early/late loss split of
`azscale loss --pooled` (larger model: higher loss on early states, lower on late, each as a
ratio with its interval, on the same pooled states for every size). Missing evidence is named
as missing, never filled in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..runs import fmt_number, is_missing
from .endgame import evidence_lines
from .sizeboot import DEFAULT_REPS, SizeBootstrap, holm, p_not_lower, percentile, size_bootstrap


@dataclass
class Comparison:
    kind: str                # step (to the next larger size) | vs_largest
    params_from: int         # the smaller size
    params_to: int           # the larger size
    elo_from: float
    elo_to: float
    delta: float             # elo_to - elo_from
    ci_low: float
    ci_high: float
    p: float                 # one-sided bootstrap p-value of "no drop"
    p_holm: float = math.nan
    flagged: bool = False


@dataclass
class InverseScaling:
    boot: SizeBootstrap
    steps: list[Comparison]
    vs_largest: list[Comparison]
    fwer: float
    level: float
    hypotheses: int
    peak: int
    peak_elo: float
    peak_prob: dict[int, float]
    peak_range: tuple[int, int]
    best_vs_largest: Comparison | None
    elo_fit: dict[str, Any] | None = None
    elo_fit_note: str = ""
    notes: list[str] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    fall: dict[str, Any] | None = None
    power: Any = None               # power.Power, or None when not computed

    @property
    def decidable(self) -> bool:
        """Every condition on the runs holds (CONDITIONS): the comparisons may give a verdict."""
        return all(c["holds"] for c in self.conditions)

    @property
    def flagged(self) -> bool:
        return self.decidable and any(c.flagged for c in self.steps + self.vs_largest)

    @property
    def inverse(self) -> bool:
        return bool(self.decidable and self.best_vs_largest and self.best_vs_largest.flagged)

    @property
    def state(self) -> str:
        if len(self.boot.params) < 2:
            return "not applicable"
        if not self.decidable:
            return "cannot tell"
        return ("inverse scaling detected" if self.inverse else "a drop flagged" if self.flagged
                else "no inverse scaling shown")

    def drops(self) -> list[Comparison]:
        """The flagged comparisons the attribution reads: best against largest first."""
        if not self.decidable:
            return []
        out = [self.best_vs_largest] if self.inverse else []
        return out + [c for c in self.steps if c.flagged and not (out and (c.params_from, c.params_to) ==
                                                                   (out[0].params_from, out[0].params_to))]

    def _comparison(self, c: Comparison) -> dict[str, Any]:
        """A comparison for verdict.json; no flag while the verdict cannot tell (its p-values stay)."""
        return {**asdict(c), "flagged": bool(c.flagged and self.decidable)}

    def to_dict(self) -> dict[str, Any]:
        # vs_largest without its last member, which is the last size step (listed once, under steps)
        return {"verdict": self.state, "flagged": self.flagged, "inverse_scaling": self.inverse,
                "conditions": self.conditions, "fwer": self.fwer, "level": self.level,
                "hypotheses": self.hypotheses, "correction": "Holm step-down over every size step and every "
                                                             "smaller size against the largest",
                "peak": {"params": self.peak, "mean_elo": self.peak_elo,
                         "probability": {str(k): v for k, v in self.peak_prob.items()},
                         "range": list(self.peak_range), "rule": "the size with the highest mean Elo; range: "
                                                                 "2.5% and 97.5% quantiles of the bootstrap argmax"},
                "steps": [self._comparison(c) for c in self.steps],
                "vs_largest": [self._comparison(c) for c in self.vs_largest[:-1]],
                "vs_largest_note": "every size below the second-largest against the largest; the second-largest "
                                   "against the largest is the last of the steps",
                "best_vs_largest": self._comparison(self.best_vs_largest) if self.best_vs_largest else None,
                "fall": self.fall,
                "power": self.power.to_dict() if self.power is not None else {"applicable": False,
                                                                              "reason": "not computed"},
                "elo_exponent": self.elo_fit, "elo_exponent_note": self.elo_fit_note,
                "resampling": self.boot.to_dict(), "notes": self.notes}


def seeds_condition(sizes: pd.DataFrame, boot: SizeBootstrap) -> dict[str, Any]:
    """At least two seeds at every size."""
    few = [int(p) for p, n in zip(boot.params, boot.seeds) if n < 2]
    text = ("" if not few else
            f"{len(few)} of {len(boot.params)} sizes have a single seed ({', '.join(f'{p:,}' for p in few)} "
            "parameters): a difference between two sizes is then as much a difference between two agents, whose "
            "seed-to-seed spread " + ("is not measured at all" if not boot.seed_df else
                                      "is measured only at the other sizes"))
    return {"name": "seeds", "holds": not few, "test": "at least two seeds at every size", "text": text,
            "advice": "Run at least two seeds per size."}


def saturation_condition(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every run has stopped improving (analysis/saturation.py): a size comparison made while some
    runs still learn compares training stages, not sizes. `rows`: `saturation_table`'s."""
    from .saturation import summary_line
    holds = bool(rows) and all(r["state"] == "saturated" for r in rows)
    return {"name": "saturation", "holds": holds,
            "test": "every run saturated (Elo gain over the last third of training below +50 with its interval, "
                    "or where Elo cannot tell, the exact move-accuracy gain below +0.02; train loss flat)",
            "text": "" if holds else f"not every run is shown to have stopped improving ({summary_line(rows)})",
            "advice": "Train until every run is saturated (a sweep's steps may grow: --set steps=N), with "
                      "within-run checkpoints in the tournament (sweep --checkpoint-tournament K) or exact values "
                      "at every checkpoint (loss --target solver --checkpoints all) to measure it."}


def seat_condition(seat: dict[str, Any] | None) -> dict[str, Any]:
    """The games between the runs' agents are not decided by the seat alone (seat.seat_summary):
    where every agent wins as first mover and loses as second, their Elo differences come from the
    prior and the reference players, and a "no fall" would be a property of the game, not of the
    agents. `seat`: elo.json's "seat" (absent in fits written before it was recorded: holds, with
    a note that it was not checked)."""
    from .seat import SEAT_DECIDED_SHARE, seat_text
    test = "the games between agents of different runs are not decided by the seat alone"
    b = (seat or {}).get("between_runs")
    if not isinstance(b, dict):
        return {"name": "seat", "holds": True, "test": test,
                "text": "", "note": "not checked: the Elo fit predates the seat count (rerun azscale elo)"}
    holds = not b.get("seat_decided")
    return {"name": "seat", "holds": holds, "test": test,
            "text": "" if holds else seat_text(b, "pairs of agents from different runs"),
            "threshold": SEAT_DECIDED_SHARE,
            "advice": "Measure strength where the agents' choices decide the games: fewer match simulations "
                      "(sweep --match-simulations) or a larger board (on 3x2 oware even one simulation finds "
                      "the first player's win)."}


# Conditions on the runs that a verdict needs; each takes (sizes, boot) and returns
# {name, holds, test, text}. Another per-run condition (say, that every run has stopped
# improving) is one more function here.
CONDITIONS = [seeds_condition]


def peak_fall(boot: SizeBootstrap, level: float = 0.95) -> dict[str, Any] | None:
    """The fall from the peak to the largest size, measured and corrected for choosing the
    peak from the same data (bootstrap bias correction, the peak re-chosen in every replicate)."""
    m, s = boot.mean, boot.samples
    K = len(m)
    if K < 2 or int(np.argmax(m)) == K - 1:
        return None
    f = float(m.max() - m[-1])
    fs = s.max(1) - s[:, -1]
    lo, hi = percentile(fs, level)
    return {"measured": f, "corrected": float(2 * f - fs.mean()), "ci_low": float(2 * f - hi),
            "ci_high": float(2 * f - lo), "bias": float(fs.mean() - f),
            "correction": "bootstrap bias correction for a peak chosen from the same data: 2 F - mean(F*), F* = "
                          "the highest size mean of a replicate minus its largest size's (the peak re-chosen in "
                          "every replicate); interval: basic bootstrap [2 F - q_hi(F*), 2 F - q_lo(F*)]"}


def study_design(boot: SizeBootstrap, sizes: pd.DataFrame, elo_samples: np.ndarray | None, games_per_pair: int,
                 first_move: float, draw_width: float, fwer: float = 0.05):
    """The design that power.py simulates, from a study: its sizes and seeds, the games per pair,
    the fitted first-move advantage and draw width, and the seed spread of true strengths (the
    pooled spread of the ratings less their game noise, measured on the Elo refits)."""
    from .power import Design, seed_sd_from_study
    game_var = 0.0
    if elo_samples is not None and len(elo_samples) > 1 and boot.seed_df:
        es = np.asarray(elo_samples, float)
        groups = sizes.groupby("params").indices
        dv = []
        for ix in groups.values():
            ix = np.asarray(ix)
            if len(ix) > 1:
                dev = (es[:, ix] - es[:, ix].mean(1, keepdims=True)) * math.sqrt(len(ix) / (len(ix) - 1))
                dv.append(dev.var(0, ddof=1))
        game_var = float(np.concatenate(dv).mean()) if dv else 0.0
    sd = seed_sd_from_study(boot.pooled_sd, game_var) if boot.seed_df else 0.0
    d = Design(list(boot.params), list(boot.seeds), int(games_per_pair), sd, float(first_move),
               float(draw_width), fwer=fwer)
    d.game_dev_var = game_var          # (not a field: kept for the upper bound of the spread)
    return d


def spread_upper(boot: SizeBootstrap, game_var: float, level: float = 0.95) -> float:
    """The top of the pooled seed spread's interval (chi-square with the pooled degrees of
    freedom), less game noise: the seed spread of true strengths at its upper bound."""
    from scipy.stats import chi2
    from .power import seed_sd_from_study
    hi = boot.pooled_sd * math.sqrt(boot.seed_df / chi2.ppf((1 - level) / 2, boot.seed_df))
    return seed_sd_from_study(hi, game_var)


def inverse_scaling(sizes: pd.DataFrame, elo_samples: np.ndarray | None, fwer: float = 0.05,
                    reps: int = DEFAULT_REPS, seed: int = 0, scheme: str = "pooled", level: float = 0.95,
                    boot: SizeBootstrap | None = None, design: dict[str, Any] | None = None,
                    power_sims: int | None = None) -> InverseScaling:
    """`sizes`: the final checkpoint of every run (columns params, elo; several seeds per size);
    `elo_samples`: Elo refits on games resampled within pairs, [B, rows] aligned with `sizes`.
    `design`: {games_per_pair, first_move, draw_width} of the study's tournament, for the power
    (power.py); None: power not computed."""
    from .power import DEFAULT_SIMS, detectable_fall
    from .scaling import elo_exponent

    if not 0 < fwer < 0.5:
        raise UserError(f"the family-wise error rate must be in (0, 0.5), got {fwer}")
    if boot is None:
        boot = size_bootstrap(sizes, elo_samples, reps=reps, seed=seed, scheme=scheme)
    K = len(boot.params)
    s, m, P = boot.samples, boot.mean, boot.params
    notes = list(boot.notes)
    if not boot.resamples:
        raise UserError("the verdict needs variation to test against: several seeds per size or Elo bootstrap "
                        "samples (azscale elo --bootstrap N)")

    def comp(kind, a, b):
        d = s[:, b] - s[:, a]
        lo, hi = percentile(d, level)
        return Comparison(kind, int(P[a]), int(P[b]), float(m[a]), float(m[b]), float(m[b] - m[a]), lo, hi,
                          p_not_lower(d))

    steps = [comp("step", j, j + 1) for j in range(K - 1)]
    vs = [comp("vs_largest", j, K - 1) for j in range(K - 2)]
    family = steps + vs
    if family:
        adj = holm(np.array([c.p for c in family]))
        for c, a in zip(family, adj):
            c.p_holm, c.flagged = float(a), bool(a <= fwer)
    if K >= 2:
        vs = vs + [steps[-1]]           # the last step is the second largest against the largest
    peak_i = int(np.argmax(m))
    arg = np.argmax(s, 1)
    prob = {int(P[k]): float((arg == k).mean()) for k in range(K) if (arg == k).any()}
    qlo, qhi = np.percentile(arg, [(1 - level) * 50, (1 + level) * 50], method="inverted_cdf")
    best = vs[peak_i] if K >= 2 and peak_i < K - 1 else None
    res = InverseScaling(boot, steps, vs, fwer, level, len(family), int(P[peak_i]), float(m[peak_i]), prob,
                         (int(P[int(qlo)]), int(P[int(qhi)])), best, notes=notes,
                         conditions=[c(sizes, boot) for c in CONDITIONS], fall=peak_fall(boot, level))
    if design is not None and K >= 2:
        d = study_design(boot, sizes, elo_samples, fwer=fwer, **design)
        res.power = detectable_fall(d, power_sims or DEFAULT_SIMS, seed)
        if res.power.applicable and boot.seed_df:
            from dataclasses import replace
            hi = spread_upper(boot, d.game_dev_var, level)
            up = detectable_fall(replace(d, seed_sd=hi), power_sims or DEFAULT_SIMS, seed)
            res.power.spread_upper = {"seed_sd": hi, "level": level, "df": boot.seed_df,
                                      "minimum_detectable_fall": None if up.censored else up.mde,
                                      "mc_se": None if up.censored else up.mde_mc_se}
    try:
        res.elo_fit = elo_exponent(sizes, boot=boot, level=level).to_dict()
    except UserError as e:
        res.elo_fit_note = f"not applicable: {e}"
    return res


# --- Markdown ---------------------------------------------------------------------------

def _elo(x: float) -> str:
    return f"{x:+,.0f}"


def _pct(x: float) -> str:
    return f"{x:.1%}" if x >= 0.001 else "<0.1%"


def _p(x: float) -> str:
    return "<0.001" if x < 0.001 else f"{x:.3f}"


VERDICT_TITLE = "# Inverse-scaling verdict: "     # the first line of every verdict (how azscale knows its own)


def verdict_markdown(game: str, test: InverseScaling, zipf: dict[str, Any] | None = None,
                     loss: dict[str, Any] | None = None) -> str:
    b = test.boot
    lines = [f"{VERDICT_TITLE}{game}", ""]
    largest = int(b.params[-1])
    fam = (f"family-wise error {test.fwer:.0%}, Holm over {test.hypotheses} comparison"
           + ("s" if test.hypotheses != 1 else ""))
    power = test.power.sentence() if test.power is not None else "Power: not computed (no tournament design given)."
    fall = test.fall
    if len(b.params) < 2:
        lines.append("**Not applicable**: one model size only; inverse scaling compares sizes.")
    elif not test.decidable:
        why = "; ".join(c["text"] for c in test.conditions if not c["holds"])
        advice = " ".join(c.get("advice", "") for c in test.conditions if not c["holds"]).strip()
        lines.append(f"**Cannot tell** whether larger models are weaker: {why}. The comparisons below describe these "
                     f"agents, not their sizes; no drop is claimed from them. {advice}")
        lines += ["", power]
    elif test.inverse:
        c = test.best_vs_largest
        lines.append(f"**Inverse scaling detected** ({fam}): the largest size ({largest:,} parameters) is weaker than "
                     f"the strongest ({c.params_from:,} parameters) by {-c.delta:,.0f} Elo as measured (95% interval "
                     f"[{-c.ci_high:,.0f}, {-c.ci_low:,.0f}]; Holm-adjusted p = {_p(c.p_holm)})"
                     + (f"; corrected for choosing the peak from the same data: **{fall['corrected']:,.0f} Elo** "
                        f"[{fall['ci_low']:,.0f}, {fall['ci_high']:,.0f}] (bootstrap bias correction, the peak "
                        "re-chosen in every replicate)" if fall else "") + ".")
        lines += ["", power]
    elif test.flagged:
        dr = ", ".join(f"{c.params_from:,} → {c.params_to:,}" for c in test.steps + test.vs_largest[:-1]
                       if c.flagged)
        lines.append(f"**A drop between sizes, but the largest size is not shown weaker than the strongest** ({fam}): "
                     f"Elo falls at {dr}.")
        lines += ["", power]
    else:
        lines.append(f"**No inverse scaling shown by these data** ({fam}): no size step and no smaller size against "
                     f"the largest shows a drop.")
        lines += ["", power]
        if test.peak != largest:
            lines.append(f"The highest mean Elo is at {test.peak:,} parameters, not at the largest size, but the "
                         "difference is within the noise of seeds and games"
                         + (f" (fall {fall['measured']:,.0f} Elo as measured, {fall['corrected']:,.0f} Elo "
                            f"[{fall['ci_low']:,.0f}, {fall['ci_high']:,.0f}] corrected for choosing the peak)"
                            if fall else "") + ".")
    spread = (f"Pooled seed-to-seed spread: {b.pooled_sd:,.0f} Elo ({b.seed_df} degrees of freedom)." if b.seed_df
              else "Seed-to-seed spread: not estimable (one seed per size).")
    lines += ["", f"Resampling: {b.describe()} (sizeboot.py). {spread}"
              + (" Seed deviations are scaled by sqrt(df / chi2_df) in each replicate, so that few seeds give "
                 "Student-t-wide intervals." if b.scheme == "pooled" and b.seed_df else "")]
    for n in test.notes:
        lines.append(f"- Note: {n}.")
    lines += ["", "## Size steps and the largest size", "",
              "| comparison | params | → params | Elo | → Elo | Δ Elo | 95% interval of Δ | p (one-sided) | Holm p | flag |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    for c in test.steps + test.vs_largest[:-1]:
        kind = "step" if c.kind == "step" else "vs largest"
        lines.append(f"| {kind} | {c.params_from:,} | {c.params_to:,} | {c.elo_from:,.0f} | {c.elo_to:,.0f} | "
                     f"{_elo(c.delta)} | [{_elo(c.ci_low)}, {_elo(c.ci_high)}] | {_p(c.p)} | {_p(c.p_holm)} | "
                     f"{'DROP' if c.flagged and test.decidable else ''} |")
    lines += ["", "p: bootstrap probability that the larger size is not weaker (H0 of no drop); Holm p: adjusted "
                  "for the whole family; flag: Holm p ≤ " + f"{test.fwer:g}"
              + ("" if test.decidable else " (no flag while the verdict cannot tell)") + ".", "",
              "## Peak", "",
              f"The peak (the size with the highest mean Elo) is **{test.peak:,} parameters** "
              f"(mean Elo {test.peak_elo:,.0f}); 95% range of the bootstrap argmax: {test.peak_range[0]:,} to "
              f"{test.peak_range[1]:,} parameters. Share of replicates in which each size is the strongest: "
              + ", ".join(f"{p:,}: {_pct(v)}" for p, v in sorted(test.peak_prob.items())) + ".",
              "", "| params | seeds | mean Elo | seed SD |", "| ---: | ---: | ---: | ---: |"]
    for p, mu, n, sd in zip(b.params, b.mean, b.seeds, b.seed_sd):
        lines.append(f"| {int(p):,} | {int(n)} | {mu:,.0f} | {fmt_number(sd, 0)} |")
    lines += ["", "## Elo exponent", ""]
    ef = test.elo_fit
    if ef:
        ci = ("no interval" if is_missing(ef["ci_low"]) else
              f"95% interval [{ef['ci_low']:.3f}, {ef['ci_high']:.3f}] from the same replicates")
        lines.append(f"alpha_N = {ef['alpha']:.3f} ({ci}) over {ef['params_min']:,} to {ef['params_max']:,} "
                     f"parameters ({ef['sizes']} sizes: {ef['range_rule']}).")
    else:
        lines.append(f"alpha_N: {test.elo_fit_note}.")
    lines += ["", "## End-game evidence", ""] + _endgame_lines(zipf)
    lines += ["", "## Early and late value loss by size", ""] + _loss_lines(loss)
    lines += ["", "## Reading", ""] + _reading(test, zipf, loss)
    return "\n".join(lines) + "\n"


def _endgame_lines(zipf: dict[str, Any] | None) -> list[str]:
    if not zipf:
        return ["- Not measured: run `azscale zipf` on the runs and pass its fits.json with --zipf."]
    eg = zipf.get("endgame") or {}
    if "applicable" not in eg:
        return ["- Not measured: this fits.json was written by an azscale without the end-game evidence; rerun "
                "`azscale zipf`."]
    head = (f"- From `azscale zipf`: curve '{eg.get('curve', '?')}', state key `{zipf.get('key_scheme', '?')}`, "
            f"games `{(eg.get('selection') or {}).get('window', '?')}`.")
    return [head] + evidence_lines(eg)


def _early_late(loss: dict[str, Any] | None) -> dict[str, Any] | None:
    return (loss or {}).get("early_late")


def _loss_lines(loss: dict[str, Any] | None) -> list[str]:
    el = _early_late(loss)
    if not el:
        return ["- Not measured: run `azscale loss --pooled` on the runs and pass its loss.json with --loss."]
    if "applicable" not in el:
        return ["- Not measured: this loss.json was written by an azscale without intervals on the early/late "
                "split; rerun `azscale loss --pooled`."]
    if not el["applicable"]:
        return [f"- Early/late split: {el['reason']}."]
    by = {int(k): v for k, v in el["by_params"].items()}
    out = [f"- From `azscale loss` ({loss.get('target', '?')} target, `{loss.get('frame', '?')}` frame, "
           f"{'pooled states: every size faces the same states' if el.get('pooled') else 'each run on its own states'}; "
           f"late = mean turn ≥ {el['late_turn']:g}); {el['statistic']}; intervals: {el['interval']['description']}.",
           "", "| params | seeds | early loss | 95% interval | late loss | 95% interval | early states | late states |",
           "| ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |"]
    for p in sorted(by):
        v = by[p]
        out.append(f"| {p:,} | {v['seeds']} | {fmt_number(v['early_loss'], 4)} | {_ci(v.get('early_ci'), 4)} | "
                   f"{fmt_number(v['late_loss'], 4)} | {_ci(v.get('late_ci'), 4)} | {v['early_states']:,} | "
                   f"{v['late_states']:,} |")
    return out + missing_subsets(el, (loss or {}).get("selection", {}).get("min_count"))


def missing_subsets(el: dict[str, Any], min_count) -> list[str]:
    """Why a size has no early or no late loss (instead of a bare 0 in the table)."""
    out = []
    seen = f"seen {min_count} or more times" if min_count else "kept"
    for subset, rule in (("late", f"mean turn ≥ {el['late_turn']:g}"), ("early", f"mean turn < {el['late_turn']:g}")):
        none = [int(p) for p, v in el["by_params"].items() if not v.get(f"{subset}_states")]
        if none:
            out.append(f"- No {subset} state ({rule}) was {seen} in the games of "
                       + ", ".join(f"{p:,}" for p in sorted(none)) + " parameters, so their "
                       f"{subset}-state loss is not measured.")
    return out


def _ci(ci, nd=3) -> str:
    if not ci or is_missing(ci[0]) or is_missing(ci[1]):
        return "n/a"
    return f"[{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]"


def loss_split(loss: dict[str, Any] | None, a: int, b: int) -> dict[str, Any]:
    """The early/late loss ratios of size b over size a and what they say about the paper's
    pattern (larger model: early loss up, late loss down): consistent, contradicts,
    inconclusive, or why it cannot be read."""
    el = _early_late(loss)
    if not el or "applicable" not in el:
        return {"reading": "not measured", "text": "the early/late loss split was not measured (azscale loss --pooled)"}
    if not el["applicable"]:
        return {"reading": "not applicable", "text": el["reason"]}
    if not el.get("pooled"):
        return {"reading": "not comparable", "text": "the loss split was computed on each run's own states, so sizes "
                                                     "faced different states; rerun azscale loss with --pooled"}
    pr = (el.get("pairs") or {}).get(f"{a}:{b}")
    if not pr:
        return {"reading": "not measured", "text": f"no loss figures for both {a:,} and {b:,} parameters"}
    e, l_ = pr["early_ratio"], pr["late_ratio"]
    if any(is_missing(x) for x in (e, l_, *pr["early_ci"], *pr["late_ci"])):
        return {"reading": "not measured", "text": "early or late states missing for one of the sizes"}
    txt = (f"early-state loss ×{e:.2f} [{pr['early_ci'][0]:.2f}, {pr['early_ci'][1]:.2f}], late-state loss "
           f"×{l_:.2f} [{pr['late_ci'][0]:.2f}, {pr['late_ci'][1]:.2f}] ({b:,} against {a:,} parameters)")
    up, down = pr["early_ci"][0] > 1, pr["late_ci"][1] < 1
    if up and down:
        return {"reading": "consistent", "text": txt}
    if pr["early_ci"][1] < 1 or pr["late_ci"][0] > 1:
        return {"reading": "contradicts", "text": txt}
    return {"reading": "inconclusive", "text": txt}


def _reading(test: InverseScaling, zipf: dict[str, Any] | None, loss: dict[str, Any] | None) -> list[str]:
    drops = test.drops()
    if not drops:
        return ["- No drop to attribute."]
    eg = (zipf or {}).get("endgame") or {}
    if "applicable" not in eg:
        pattern, eg_text = "not measured", "the end-game evidence was not measured"
    elif not eg["applicable"]:
        pattern, eg_text = "not applicable", eg["reason"]
    elif not eg.get("measured"):
        pattern, eg_text = "not measured", eg.get("reason", "not measured")
    else:
        pattern = eg["pattern"]
        held = [k.replace("_", " ") for k, c in eg["criteria"].items() if c["holds"]]
        eg_text = (f"end-game pattern {pattern} ({eg['held']} of {eg.get('criteria_count', len(eg['criteria']))} criteria hold"
                   + (f": {', '.join(held)}" if held else "") + ")")
    out = []
    for c in drops:
        sp = loss_split(loss, c.params_from, c.params_to)
        what = f"{c.params_from:,} → {c.params_to:,} parameters ({_elo(c.delta)} Elo)"
        if pattern == "present" and sp["reading"] == "consistent":
            verdict = ("**supports the paper's mechanism**: frequent end-game states shape the Zipf curve, and the "
                       "larger model trades early-state accuracy for late states")
        elif pattern in ("absent", "not applicable") or sp["reading"] == "contradicts":
            verdict = "**does not support the paper's mechanism**"
        else:
            verdict = "**cannot be attributed** (evidence incomplete or inconclusive)"
        out.append(f"- Drop {what}: {verdict}. End game: {eg_text}. Loss split: {sp['reading']}: {sp['text']}.")
    return out


def verdict_dict(test: InverseScaling, zipf: dict[str, Any] | None, loss: dict[str, Any] | None) -> dict[str, Any]:
    d = test.to_dict()
    d["attribution"] = [{"params_from": c.params_from, "params_to": c.params_to,
                         "loss_split": loss_split(loss, c.params_from, c.params_to)} for c in test.drops()]
    eg = (zipf or {}).get("endgame") or {}
    d["endgame_pattern"] = (eg.get("pattern") if eg.get("measured") else
                            "not applicable" if eg.get("applicable") is False else "not measured")
    return d
