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

- **Exact move-accuracy gain** (where exact values exist: `loss --target solver` over a run's
  checkpoints): the share of decisive states (some move gives the exact value away) where the
  network's most likely move keeps the value, at the final checkpoint minus at the checkpoint
  nearest two thirds (the same window rule as the Elo gain), paired on the same states, with a
  95% interval over states. It stands in for the Elo gain where that is not applicable, e.g. on a
  board whose games the seat decides (3x2 oware: every game goes to the first mover), where
  matches cannot tell checkpoints apart; its tolerance is `ACC_TOL`.

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

from ..checks import is_finite_number

FRACTION = 1 / 3           # the last third of training
ELO_TOL = 50.0             # a gain whose interval stays below this is no gain
LOSS_TOL = 0.05            # a relative loss change within +-5% over the last third is flat
ACC_TOL = 0.02             # an exact move-accuracy gain whose interval stays below 2 points is no gain
ACC_REPS = 2000
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
    step, lo, hi, inside = _nearest_reference(rows["step"].tolist(), fraction)
    ref = rows[rows["step"] == step].iloc[0]
    if not inside:
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


def reference_step(steps: Sequence[int], fraction: float = FRACTION) -> tuple[int | None, str]:
    """The checkpoint step nearest (1 - fraction) of the last, or None with the reason when none
    lies between half and five sixths of the last step (the Elo gain's rule)."""
    steps = sorted(int(s) for s in steps)
    if len(steps) < 2:
        return None, "one checkpoint evaluated (loss --checkpoints all)"
    ref, lo, hi, inside = _nearest_reference(steps, fraction)
    if not inside:
        return None, f"no checkpoint evaluated between steps {lo:.0f} and {hi:.0f} of {steps[-1]}"
    return int(ref), ""


def _nearest_reference(steps: Sequence[float], fraction: float) -> tuple[float, float, float, bool]:
    """The one rule of both gains: among the steps before the last (at least two steps), the one
    nearest (1 - fraction) of the last (the earlier on a tie); the window it must lie in, half
    to five sixths of the last step; whether it does."""
    steps = sorted(steps)
    last = steps[-1]
    ref = min(steps[:-1], key=lambda s: abs(s - last * (1 - fraction)))
    lo, hi = last * (1 - 1.5 * fraction), last * (1 - 0.5 * fraction)
    return ref, lo, hi, lo <= ref <= hi


def exact_gain(per_state, fraction: float = FRACTION, reps: int = ACC_REPS, seed: int = 0) -> dict[str, Any]:
    """One run's exact move-accuracy gain over its last third (rows of `loss --target solver`'s
    per-state table for that run: step, key, decisive, move_optimal), paired on the states
    decisive at both checkpoints, with a 95% bootstrap interval over states."""
    if "move_optimal" not in per_state.columns or per_state.empty:
        return {"applicable": False, "reason": "no exact values (loss --target solver)"}
    steps = per_state["step"].unique()
    ref, why = reference_step(steps, fraction)
    if ref is None:
        return {"applicable": False, "reason": why}
    last = int(max(steps))
    d = per_state[per_state["decisive"].astype(bool)]
    a = d[d["step"] == ref].set_index("key")["move_optimal"]
    b = d[d["step"] == last].set_index("key")["move_optimal"]
    keys = a.index.intersection(b.index)
    if len(keys) < 20:
        return {"applicable": False, "reason": f"{len(keys)} decisive states at both checkpoints; needs 20"}
    diff = (b.loc[keys] - a.loc[keys]).to_numpy(float)
    rng = np.random.default_rng(seed)
    n = len(diff)
    boot = np.array([diff[rng.integers(0, n, n)].mean() for _ in range(reps)])
    return {"applicable": True, "gain": float(diff.mean()), "ci": [float(np.percentile(boot, 2.5)),
                                                                    float(np.percentile(boot, 97.5))],
            "from_step": int(ref), "to_step": last, "states": int(n),
            "accuracy_from": float(a.loc[keys].mean()), "accuracy_to": float(b.loc[keys].mean())}


def read_exact_gains(loss_json: Path | None) -> dict[str, dict[str, Any]]:
    """Each run's exact move-accuracy gain from a `loss --target solver` result (empty when there
    is none, or it holds no gains: it was made on final checkpoints only, or before gains)."""
    if loss_json is None or not Path(loss_json).exists():
        return {}
    from ..runs import read_json
    gains = read_json(Path(loss_json), "loss result").get("exact_gain")
    return {str(k): v for k, v in gains.items() if _well_formed_gain(v)} if isinstance(gains, dict) else {}


def _well_formed_gain(v) -> bool:
    """An exact gain as `exact_gain` writes it; anything else (a damaged file) counts as none."""
    if not isinstance(v, dict) or not isinstance(v.get("applicable"), bool):
        return False
    if not v["applicable"]:
        return True
    ci = v.get("ci")
    return (is_finite_number(v.get("gain")) and isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_finite_number(x) for x in ci)
            and all(isinstance(v.get(k), int) and not isinstance(v.get(k), bool) for k in ("from_step", "to_step")))


def check_exact_gains(loss_json: Path, run_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--exact`'s file, refused in one line unless it is a `loss --target solver` result with
    exact gains for at least one of the runs (else it would silently measure nothing)."""
    from ..errors import UserError
    from ..runs import read_json
    if not Path(loss_json).is_file():
        raise UserError(f"--exact {loss_json}: no such file (loss.json of azscale loss --target solver)")
    d = read_json(Path(loss_json), "loss result")
    if d.get("target") != "solver":
        raise UserError(f"--exact {loss_json}: a loss against {d.get('target')!r} targets; exact gains need "
                        f"azscale loss --target solver --checkpoints all")
    gains = read_exact_gains(Path(loss_json))
    if not set(gains) & set(run_names):
        raise UserError(f"--exact {loss_json}: holds exact gains for none of the runs given "
                        f"({', '.join(sorted(gains)[:3]) or 'none at all: made before azscale measured them'})")
    return gains


def _finite(ci) -> bool:
    return isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_finite_number(x) for x in ci)


def classify(elo: dict[str, Any], loss: dict[str, Any], exact: dict[str, Any] | None = None) -> tuple[str, str]:
    """(state, reason): improving, saturated or cannot tell. Improving: a gain or a fall beyond
    the tolerance with its whole interval; saturated: the gain's interval below the tolerance and
    the loss's within it; the reason names what decided it, or what is missing. The gain is the
    Elo gain, or where that is not applicable the exact move-accuracy gain (`exact`)."""
    tol, unit = ELO_TOL, "{:+.0f}"
    if not (elo.get("applicable") and _finite(elo.get("ci"))) and exact and exact.get("applicable") \
            and _finite(exact.get("ci")):
        why_not = elo.get("reason") or "no bootstrap interval"
        elo = {**exact, "label": f"exact move-accuracy gain (the Elo gain: {why_not})"}
        tol, unit = ACC_TOL, "{:+.3f}"
    e_ci = elo.get("ci") if elo.get("applicable") and _finite(elo.get("ci")) else None
    l_ci = loss.get("ci") if loss.get("applicable") and _finite(loss.get("ci")) else None
    f = unit.format
    e_txt = (f"{elo.get('label', 'Elo gain')} {f(elo['gain'])} [{f(e_ci[0])}, {f(e_ci[1])}] from step "
             f"{elo['from_step']} to {elo['to_step']}" if e_ci is not None else None)
    l_txt = (f"train loss change {loss['relative_change']:+.1%} [{l_ci[0]:+.1%}, {l_ci[1]:+.1%}] over the last third"
             if l_ci is not None else None)
    if e_ci is not None and e_ci[0] > tol:
        return "improving", f"{e_txt}: above {f(tol)}"
    if l_ci is not None and l_ci[1] < -LOSS_TOL:
        return "improving", f"{l_txt}: falling by more than {LOSS_TOL:.0%}"
    elo_flat = e_ci is not None and e_ci[1] < tol
    loss_flat = l_ci is None or l_ci[0] > -LOSS_TOL
    if elo_flat and loss_flat:
        return "saturated", f"{e_txt}: below {f(tol)}" + (f"; {l_txt}" if l_txt else "")
    why = []
    if e_ci is None:
        why.append("Elo gain: " + (elo.get("reason") or "no bootstrap interval"))
        if exact and not exact.get("applicable") and exact.get("reason") not in (None, "no exact values"):
            why.append("exact move-accuracy gain: " + exact["reason"])
    elif not elo_flat:
        why.append(f"{e_txt}: neither above nor below {f(tol)}")
    if l_ci is None:
        why.append("loss: " + (loss.get("reason") or "no interval"))
    elif not loss_flat:
        why.append(f"{l_txt}: neither a fall beyond {LOSS_TOL:.0%} nor flat")
    return "cannot tell", "; ".join(why)


def saturation_table(elo_dir: Path | None, run_dirs: Sequence[Path], metrics=None,
                     exact: Path | None = None) -> list[dict[str, Any]]:
    """One row per run: its Elo gain and loss trend over the last third and the state.
    `metrics(run_dir)`: the run's recorded metrics lines (default `checkpoints.recorded_metrics`;
    the report passes its reader, which also reads a copy of the inputs without games);
    `exact`: a `loss --target solver` loss.json whose exact move-accuracy gains stand in where
    the Elo gain is not applicable."""
    from ..checkpoints import recorded_metrics
    metrics = metrics or recorded_metrics
    elo, seat = None, {}
    if elo_dir is not None and (Path(elo_dir) / "elo.csv").exists():
        elo, seat = elo_seat(Path(elo_dir))
    gains = read_exact_gains(exact)
    return [run_saturation(Path(rd), elo, metrics, seat.get(Path(rd).name), gains.get(Path(rd).name))
            for rd in run_dirs]


def elo_seat(elo_dir: Path) -> tuple[Any, dict[str, Any]]:
    """(Elo table, bootstrap samples), and the within-run seat counts by run, of an Elo fit."""
    from .elo_files import load_elo
    table, samples, summary = load_elo(Path(elo_dir))
    within = (summary.get("seat") or {}).get("within_runs") if isinstance(summary, dict) else None
    return (table.reset_index(drop=True), samples), (within if isinstance(within, dict) else {})


def run_saturation(run_dir: Path, elo, metrics, seat: dict[str, Any] | None = None,
                   exact: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run's row: `elo` is (Elo table, bootstrap samples) or None where there is no fit yet;
    `metrics(run_dir)` its metrics lines; `seat` the seat count of its within-run games
    (seat.seat_summary): where the seat decides them, the Elo gain is not applicable; `exact`
    its exact move-accuracy gain (`exact_gain`), which then stands in for it."""
    loss = loss_trend(metrics(run_dir))
    gain = elo_gain(*elo, run_dir.name) if elo is not None else {"applicable": False, "reason": "no Elo fit yet"}
    if gain.get("applicable") and isinstance(seat, dict) and seat.get("seat_decided"):
        from .seat import seat_text
        gain = {"applicable": False, "reason": "not applicable: " + seat_text(seat, "pairs of its checkpoints")}
    exact = exact if isinstance(exact, dict) else {"applicable": False, "reason": "no exact values"}
    state, reason = classify(gain, loss, exact)
    return {"run": run_dir.name, "state": state, "reason": reason, "elo": gain, "loss": loss, "exact": exact}


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
