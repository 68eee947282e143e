"""The inverse-scaling verdict (PAPER.md section 7).

A step from one model size to the next larger is flagged as a drop when the bootstrap
probability that the larger size's mean Elo is lower is >= `threshold` (0.95 by default).
Attribution uses what is measured: the share of late states among the most frequent states and
the Zipf curve with and without late states (from `azscale zipf`), and, when available, early
vs late loss by size. Missing evidence is named as missing, never filled in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..runs import fmt_number


@dataclass
class Step:
    params_from: int
    params_to: int
    elo_from: float
    elo_to: float
    delta: float
    ci_low: float
    ci_high: float
    p_drop: float
    flagged: bool


def size_steps(sizes: pd.DataFrame, samples: np.ndarray, threshold: float = 0.95,
               level: float = 0.95) -> list[Step]:
    """`sizes`: rows with params, elo (several seeds per size allowed); `samples`: bootstrap
    ratings [reps, rows]."""
    groups = sizes.groupby("params").indices
    params = sorted(groups)
    elo = sizes["elo"].to_numpy()
    mean = {p: elo[groups[p]].mean() for p in params}
    boot = {p: samples[:, groups[p]].mean(1) for p in params}
    q = [(1 - level) * 50, (1 + level) * 50]
    out = []
    for a, b in zip(params[:-1], params[1:]):
        d = boot[b] - boot[a]
        lo, hi = np.percentile(d, q)
        p_drop = float((d < 0).mean())
        out.append(Step(int(a), int(b), float(mean[a]), float(mean[b]), float(mean[b] - mean[a]),
                        float(lo), float(hi), p_drop, p_drop >= threshold))
    return out


def verdict_markdown(game: str, steps: list[Step], zipf: dict[str, Any] | None = None,
                     elo_fit: dict[str, Any] | None = None, threshold: float = 0.95,
                     loss: dict[str, Any] | None = None) -> str:
    flagged = [s for s in steps if s.flagged]
    lines = [f"# Inverse-scaling verdict: {game}", ""]
    if flagged:
        peak = flagged[0].params_from
        lines.append(f"**Inverse scaling detected**: Elo falls with bootstrap probability >= {threshold:g} "
                     f"at {len(flagged)} size step(s); strength peaks near {peak:,} parameters.")
    else:
        lines.append(f"**No inverse scaling shown by these data**: no size step has a bootstrap probability "
                     f">= {threshold:g} that Elo falls.")
    lines += ["", "| params | → params | Elo | → Elo | Δ Elo | 95% CI of Δ | P(drop) | flag |",
              "| ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for s in steps:
        lines.append(f"| {s.params_from:,} | {s.params_to:,} | {s.elo_from:,.0f} | {s.elo_to:,.0f} | {s.delta:+,.0f} | "
                     f"[{s.ci_low:+,.0f}, {s.ci_high:+,.0f}] | {s.p_drop:.3f} | {'DROP' if s.flagged else ''} |")
    if elo_fit:
        lines += ["", f"Elo exponent alpha_N = {elo_fit['alpha']:.3f} "
                      f"[{elo_fit['ci_low']:.3f}, {elo_fit['ci_high']:.3f}] over {elo_fit['params_min']:,} to "
                      f"{elo_fit['params_max']:,} parameters ({elo_fit['sizes']} sizes)."]
    lines += ["", "## End-game evidence"]
    if zipf and zipf.get("endgame"):
        eg = zipf["endgame"]
        all_ls = next((f for f in zipf["curves"][-1]["fits"] if f["method"] == "ls"), None)
        early = eg.get("early_only_ls") or {}
        lines.append(f"- Zipf curve '{eg['curve']}' (key `{zipf['key_scheme']}`): share of late states "
                     f"(mean turn >= {eg['late_turn']:g}) among the 100 most frequent: "
                     f"{fmt_number(eg['late_share_top100'])}; {eg['late_states']:,} late states in all.")
        lines.append(f"- LS exponent with all states {fmt_number(all_ls['alpha'] if all_ls else math.nan)}, "
                     f"without late states {fmt_number(early.get('alpha', math.nan))} "
                     f"(a shoulder from frequent end-game states shows as a difference).")
        share = eg["late_share_top100"]
        if flagged:
            if share is not None and not math.isnan(share) and share >= 0.5:
                lines.append("- Reading: frequent end-game states dominate the top ranks, consistent with the "
                             "paper's mechanism (larger models spend capacity on them).")
            else:
                lines.append("- Reading: the top ranks are not dominated by end-game states, so these data do "
                             "not support the paper's end-game mechanism for the drop.")
    else:
        lines.append("- Not measured: run `azscale zipf` on the runs and pass its fits.json with --zipf.")
    lines += _early_late_lines(loss, flagged)
    return "\n".join(lines) + "\n"


def _early_late_lines(loss: dict[str, Any] | None, flagged: list[Step]) -> list[str]:
    el = (loss or {}).get("early_late")
    if not el or not el.get("by_params"):
        return ["- Early vs late value loss by size: not measured (run `azscale loss` on the runs and pass "
                "its loss.json with --loss)."]
    by = {int(k): v for k, v in el["by_params"].items()}
    out = [f"- Early vs late value loss by size ({loss.get('target', '?')} target, `{loss.get('frame', '?')}` "
           f"frame; late = mean turn >= {el['late_turn']:g}; {el['statistic']}):", "",
           "| params | early loss | late loss | early states | late states | seeds |",
           "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in sorted(by):
        v = by[p]
        out.append(f"| {p:,} | {fmt_number(v['early_loss'])} | {fmt_number(v['late_loss'])} | {v['early_states']:,} | "
                   f"{v['late_states']:,} | {v['seeds']} |")
    out.append("")
    for s in flagged:
        a, b = by.get(s.params_from), by.get(s.params_to)
        if not a or not b:
            out.append(f"- At the drop {s.params_from:,} → {s.params_to:,}: no loss figures for both sizes.")
            continue
        de = _num(b["early_loss"]) - _num(a["early_loss"])
        dl = _num(b["late_loss"]) - _num(a["late_loss"])
        if math.isnan(de) or math.isnan(dl):
            out.append(f"- At the drop {s.params_from:,} → {s.params_to:,}: early or late states missing, "
                       "so the split cannot be read.")
            continue
        fits = de > 0 and dl < 0
        out.append(f"- At the drop {s.params_from:,} → {s.params_to:,}: early loss {de:+.3f}, late loss {dl:+.3f}. "
                   + ("Consistent with the paper's mechanism (the larger model trades early-state accuracy "
                      "for late states)." if fits else
                      "Not the paper's pattern (it predicts early loss up and late loss down)."))
    return out


def _num(x) -> float:
    return math.nan if x is None else float(x)


def steps_to_dicts(steps: list[Step]) -> list[dict[str, Any]]:
    return [asdict(s) for s in steps]
