"""Has a run stopped improving? Two measurements over the last third of its training.

- **Elo gain**: the rating of its final checkpoint minus that of its checkpoint nearest two
  thirds of its steps (not applicable unless that one lies between half and five sixths; the
  within-run tournament includes it, `checkpoints.spread_checkpoints`), from the within-run round-robins fitted with everything else
  (`azscale elo`), with a 95% interval from the fit's bootstrap samples (the same replicate for
  both checkpoints, so their covariance is kept).
- **Train-loss trend**: the learner's loss (value + policy, without the L2 term) over the steps
  of the last third, cut into `BLOCKS` consecutive blocks; a least-squares line through the block
  means gives the change over the last third relative to its mean, with a t interval on
  `BLOCKS - 2` degrees of freedom (blocks, not steps, because neighbouring steps share data).

A run is **improving** when the Elo gain's interval lies above `ELO_TOL` or the loss falls by more than
`LOSS_TOL` with its whole interval; **saturated** when the Elo gain's interval lies below
`ELO_TOL` and the loss's interval lies above -`LOSS_TOL`; otherwise **cannot tell** (too few
games or checkpoints to say). Without within-run checkpoints the Elo half is "not applicable"
and a run is never called saturated on its loss alone ("cannot tell": a flat train loss says
nothing of playing strength).
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
    if not (np.isfinite(rel) and np.isfinite(half)) or mean <= 0:
        return {"applicable": False, "reason": "the loss's trend is not defined (constant or non-positive loss)"}
    return {"applicable": True, "relative_change": float(rel), "ci": [float(rel - half), float(rel + half)],
            "steps": [int(s.min()), int(s.max())], "blocks": blocks, "mean_loss": float(mean)}


def elo_gain(table, samples, run: str, fraction: float = FRACTION) -> dict[str, Any]:
    """Final-checkpoint Elo minus the Elo of the run's checkpoint nearest (1 - fraction) of its
    final step, with a bootstrap interval; not applicable unless that checkpoint lies between
    half and five sixths of the final step (the span compared is stated: `from_step`)."""
    rows = table[(table["run"] == run) & table["step"].notna()].sort_values("step")
    if rows.empty:
        return {"applicable": False, "reason": "the run is not in the Elo table"}
    if len(rows) < 2:
        return {"applicable": False, "reason": "no within-run checkpoints in the tournament "
                                               "(sweep --checkpoint-tournament K, K >= 3)"}
    final = rows.iloc[-1]
    last = float(final["step"])
    earlier = rows.iloc[:-1]
    ref = earlier.loc[(earlier["step"] - last * (1 - fraction)).abs().idxmin()]
    lo, hi = last * (1 - 1.5 * fraction), last * (1 - 0.5 * fraction)
    if not lo <= float(ref["step"]) <= hi:
        return {"applicable": False,
                "reason": f"no within-run checkpoint between steps {lo:.0f} and {hi:.0f} of {last:.0f} "
                          f"(nearest two thirds: {int(ref['step'])}; sweep --checkpoint-tournament K >= 3 includes one)"}
    gain = float(final["elo"] - ref["elo"])
    out = {"applicable": True, "gain": gain, "from_step": int(ref["step"]), "to_step": int(last), "ci": None}
    if samples is not None and len(samples) >= 20:
        d = samples[:, final.name] - samples[:, ref.name]
        out["ci"] = [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]
        out["replicates"] = int(len(samples))
    return out


def _finite(ci) -> bool:
    return ci is not None and all(np.isfinite(x) for x in ci)


def classify(elo: dict[str, Any], loss: dict[str, Any]) -> tuple[str, str]:
    """(state, reason): improving, saturated or cannot tell. Improving: a gain or a fall beyond
    the tolerance with its whole interval; saturated: the gain's interval below the tolerance and
    the loss's within it; the reason names what decided it, or what is missing."""
    e_ci = elo.get("ci") if elo.get("applicable") and _finite(elo.get("ci")) else None
    l_ci = loss.get("ci") if loss.get("applicable") and _finite(loss.get("ci")) else None
    e_txt = (f"Elo gain {elo['gain']:+.0f} [{e_ci[0]:+.0f}, {e_ci[1]:+.0f}] from step {elo['from_step']} to "
             f"{elo['to_step']}" if e_ci is not None else None)
    l_txt = (f"train loss change {loss['relative_change']:+.1%} [{l_ci[0]:+.1%}, {l_ci[1]:+.1%}] over the last third"
             if l_ci is not None else None)
    if e_ci is not None and e_ci[0] > ELO_TOL:
        return "improving", f"{e_txt}: above +{ELO_TOL:.0f}"
    if l_ci is not None and l_ci[1] < -LOSS_TOL:
        return "improving", f"{l_txt}: falling by more than {LOSS_TOL:.0%}"
    elo_flat = e_ci is not None and e_ci[1] < ELO_TOL
    loss_flat = l_ci is None or l_ci[0] > -LOSS_TOL
    if elo_flat and loss_flat:
        return "saturated", f"{e_txt}: below +{ELO_TOL:.0f}" + (f"; {l_txt}" if l_txt else "")
    why = []
    if e_ci is None:
        why.append("Elo gain: " + (elo.get("reason") or "no bootstrap interval"))
    elif not elo_flat:
        why.append(f"{e_txt}: neither above nor below +{ELO_TOL:.0f}")
    if l_ci is None:
        why.append("loss: " + (loss.get("reason") or "no interval"))
    elif not loss_flat:
        why.append(f"{l_txt}: neither a fall beyond {LOSS_TOL:.0%} nor flat")
    return "cannot tell", "; ".join(why)


def saturation_table(elo_dir: Path | None, run_dirs: Sequence[Path], metrics=None) -> list[dict[str, Any]]:
    """One row per run: its Elo gain and loss trend over the last third and the state.
    `metrics(run_dir)`: the run's recorded metrics lines (default `checkpoints.recorded_metrics`;
    the report passes its reader, which also reads a copy of the inputs without games)."""
    from ..checkpoints import recorded_metrics
    metrics = metrics or recorded_metrics
    table = samples = None
    seat: dict[str, Any] = {}
    if elo_dir is not None and (Path(elo_dir) / "elo.csv").exists():
        from .elo_files import load_elo
        table, samples, summary = load_elo(Path(elo_dir))
        table = table.reset_index(drop=True)
        within = (summary.get("seat") or {}).get("within_runs") if isinstance(summary, dict) else None
        seat = within if isinstance(within, dict) else {}
    elo = (table, samples) if table is not None else None
    return [run_saturation(Path(rd), elo, metrics, seat.get(Path(rd).name)) for rd in run_dirs]


def run_saturation(run_dir: Path, elo, metrics, seat: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run's row: `elo` is (Elo table, bootstrap samples) or None where there is no fit yet;
    `metrics(run_dir)` its metrics lines; `seat` the seat count of its within-run games
    (seat.seat_summary): where the seat decides them, the Elo gain is not applicable."""
    loss = loss_trend(metrics(run_dir))
    gain = elo_gain(*elo, run_dir.name) if elo is not None else {"applicable": False, "reason": "no Elo fit yet"}
    if gain.get("applicable") and isinstance(seat, dict) and seat.get("seat_decided"):
        from .seat import seat_text
        gain = {"applicable": False, "reason": "not applicable: " + seat_text(seat, "pairs of its checkpoints")}
    state, reason = classify(gain, loss)
    return {"run": run_dir.name, "state": state, "reason": reason, "elo": gain, "loss": loss}


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
