"""Has a run stopped improving? Two measurements over the last third of its training.

- **Elo gain**: the rating of its final checkpoint minus that of its latest checkpoint at or
  before two thirds of its steps, from the within-run round-robins fitted with everything else
  (`azscale elo`), with a 95% interval from the fit's bootstrap samples (the same replicate for
  both checkpoints, so their covariance is kept).
- **Train-loss trend**: the learner's loss (value + policy, without the L2 term) over the steps
  of the last third, cut into `BLOCKS` consecutive blocks; a least-squares line through the block
  means gives the change over the last third relative to its mean, with a t interval on
  `BLOCKS - 2` degrees of freedom (blocks, not steps, because neighbouring steps share data).

A run is **improving** when the Elo gain's interval lies above 0 or the loss falls by more than
`LOSS_TOL` with its whole interval; **saturated** when the Elo gain's interval lies below
`ELO_TOL` and the loss's interval lies above -`LOSS_TOL`; otherwise **cannot tell** (too few
games or checkpoints to say). Without within-run checkpoints the Elo half is "not applicable"
and a run can be called saturated on its loss alone only as "cannot tell".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats

FRACTION = 1 / 3           # the last third of training
ELO_TOL = 50.0             # a gain whose interval stays below this is no gain
LOSS_TOL = 0.05            # a relative loss change within +-5% over the last third is flat
BLOCKS = 6


def loss_trend(metrics: Sequence[dict[str, Any]], fraction: float = FRACTION, blocks: int = BLOCKS) -> dict[str, Any]:
    """Relative change of the train loss over the last `fraction` of the steps, with a 95%
    interval; `applicable: False` with the reason when there are too few steps."""
    rows = [(m["step"], m.get("loss_value"), m.get("loss_policy")) for m in metrics
            if isinstance(m.get("step"), int)]
    rows = [(s, v + p) for s, v, p in rows if isinstance(v, (int, float)) and isinstance(p, (int, float))
            and np.isfinite(v + p)]
    if not rows:
        return {"applicable": False, "reason": "no learner steps recorded"}
    steps = np.array([r[0] for r in rows], float)
    loss = np.array([r[1] for r in rows], float)
    last = steps.max()
    keep = steps > last * (1 - fraction)
    if keep.sum() < 2 * blocks:
        return {"applicable": False, "reason": f"{int(keep.sum())} steps in the last third; needs {2 * blocks}"}
    s, y = steps[keep], loss[keep]
    order = np.argsort(s)
    parts = np.array_split(order, blocks)
    x = np.array([s[p].mean() for p in parts])
    m = np.array([y[p].mean() for p in parts])
    fit = stats.linregress(x, m)
    span, mean = s.max() - s.min(), y.mean()
    t = stats.t.ppf(0.975, blocks - 2)
    rel = fit.slope * span / mean
    half = t * fit.stderr * span / mean
    return {"applicable": True, "relative_change": float(rel), "ci": [float(rel - half), float(rel + half)],
            "steps": [int(s.min()), int(s.max())], "blocks": blocks, "mean_loss": float(mean)}


def elo_gain(table, samples, run: str, fraction: float = FRACTION) -> dict[str, Any]:
    """Final-checkpoint Elo minus the Elo of the run's latest checkpoint at or before
    (1 - fraction) of its final step, with a bootstrap interval."""
    rows = table[(table["run"] == run) & table["step"].notna()].sort_values("step")
    if len(rows) < 2:
        return {"applicable": False, "reason": "no within-run checkpoints in the tournament "
                                               "(sweep --checkpoint-tournament K)"}
    final = rows.iloc[-1]
    early = rows[rows["step"] <= final["step"] * (1 - fraction)]
    if early.empty:
        return {"applicable": False, "reason": f"no checkpoint at or before two thirds of step {int(final['step'])}"}
    ref = early.iloc[-1]
    gain = float(final["elo"] - ref["elo"])
    out = {"applicable": True, "gain": gain, "from_step": int(ref["step"]), "to_step": int(final["step"]), "ci": None}
    if samples is not None and len(samples) >= 20:
        d = samples[:, final.name] - samples[:, ref.name]
        out["ci"] = [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]
        out["replicates"] = int(len(samples))
    return out


def classify(elo: dict[str, Any], loss: dict[str, Any]) -> tuple[str, str]:
    """(state, reason): improving, saturated or cannot tell."""
    e_ci = elo.get("ci") if elo.get("applicable") else None
    l_ci = loss.get("ci") if loss.get("applicable") else None
    if e_ci is not None and e_ci[0] > 0:
        return "improving", f"Elo gain over the last third {elo['gain']:+.0f} [{e_ci[0]:+.0f}, {e_ci[1]:+.0f}]"
    if l_ci is not None and l_ci[1] < -LOSS_TOL:
        return "improving", f"train loss falls {-loss['relative_change']:.0%} over the last third"
    if e_ci is not None and e_ci[1] < ELO_TOL and (l_ci is None or l_ci[0] > -LOSS_TOL):
        return "saturated", (f"Elo gain {elo['gain']:+.0f} [{e_ci[0]:+.0f}, {e_ci[1]:+.0f}] below +{ELO_TOL:.0f}"
                             + ("" if l_ci is None else f"; loss change {loss['relative_change']:+.1%}"))
    why = []
    if e_ci is None:
        why.append("Elo gain: " + (elo.get("reason") or "no bootstrap interval"))
    else:
        why.append(f"Elo gain {elo['gain']:+.0f} [{e_ci[0]:+.0f}, {e_ci[1]:+.0f}] neither above 0 nor below +{ELO_TOL:.0f}")
    if l_ci is None:
        why.append("loss: " + loss.get("reason", "not measured"))
    return "cannot tell", "; ".join(why)


def saturation_table(elo_dir: Path | None, run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per run: its Elo gain and loss trend over the last third and the state."""
    from ..checkpoints import recorded_metrics
    table = samples = None
    if elo_dir is not None and (Path(elo_dir) / "elo.csv").exists():
        from .elo_report import _load_elo
        table, samples, _ = _load_elo(Path(elo_dir))
        table = table.reset_index(drop=True)
    out = []
    for rd in run_dirs:
        rd = Path(rd)
        loss = loss_trend(recorded_metrics(rd))
        elo = (elo_gain(table, samples, rd.name) if table is not None
               else {"applicable": False, "reason": "no Elo fit"})
        state, reason = classify(elo, loss)
        out.append({"run": rd.name, "state": state, "reason": reason, "elo": elo, "loss": loss})
    return out


def summary_line(rows: Sequence[dict[str, Any]]) -> str:
    n = len(rows)
    sat = [r["run"] for r in rows if r["state"] == "saturated"]
    imp = [r["run"] for r in rows if r["state"] == "improving"]
    unk = [r["run"] for r in rows if r["state"] == "cannot tell"]
    parts = [f"{len(sat)} of {n} runs saturated"]
    if imp:
        parts.append("still improving: " + ", ".join(imp))
    if unk:
        parts.append("cannot tell: " + ", ".join(unk))
    return "; ".join(parts)
