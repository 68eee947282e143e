"""The quanta check, stated as the quantization model states it (PAPER.md section 1).

If quantum k is used with frequency p_k proportional to k^-(alpha + 1), and in rank-frequency
form frequency proportional to rank^-alpha_Z, then alpha = alpha_Z - 1 and the model predicts:
- the LOSS against parameters N: L(N) - L_inf proportional to N^-alpha, so alpha_N(loss) =
  alpha_Z - 1;
- the LOSS against data D: L(D) - L_inf proportional to D^-(alpha / (alpha + 1)).
Both need alpha > 0, i.e. alpha_Z > 1; at alpha_Z <= 1 the model gives no exponent, and the
check says "not applicable (alpha_Z <= 1)" instead of printing a negative "prediction".

What is set beside the predictions (measured by `azscale scaling --run`):
- alpha_N(loss): the saturating power law L_inf + (N_c / N)^alpha fitted to each run's final
  learner value loss against parameters (scaling.py), interval from resampling seeds within sizes;
- loss against data: each size's learner value loss against learner samples seen (learner steps
  x updates per step x batch size, from metrics.jsonl), from the first step with a full replay
  buffer, in log-spaced bins of samples, each seed's curve fitted alone with
  L_inf + (D_c / D)^beta; a size's exponent is the mean over its seeds with a Student t interval
  over seeds (a run's steps are not independent draws, so they are never resampled one by one;
  one seed gives no interval).
The Elo exponent is a different quantity (playing strength, not loss) and is reported
separately; it is not what alpha_Z - 1 predicts. No word here says whether numbers "agree":
the numbers and their intervals are printed side by side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import checkpoints as ck
from .. import runs
from ..errors import UserError

MIN_DATA_POINTS = 6
BINS_PER_RUN = 20
NOT_APPLICABLE = "not applicable (α_Z ≤ 1)"


def learner_curves(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """Every learner step of every run: run, params, seed, samples seen, value loss, buffer fill."""
    rows = []
    for rd in runs.distinct_sources(run_dirs, "run"):
        cfg = ck.read_run_config(rd)
        st = cfg["settings"]
        metrics = ck.recorded_metrics(rd)
        try:
            per_step = int(st["updates_per_step"]) * int(st["batch_size"])
            for m in metrics:
                rows.append({"run": cfg["run"], "params": int(cfg["params"]), "seed": int(st.get("seed", 0)),
                             "step": int(m["step"]), "samples": int(m["step"]) * per_step,
                             "value_loss": float(m["loss_value"]), "buffer_fill": float(m["buffer_fill"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{rd}: damaged metrics.jsonl or config.json ({type(exc).__name__}: {exc})") from None
    return pd.DataFrame(rows, columns=["run", "params", "seed", "step", "samples", "value_loss", "buffer_fill"])


def _binned(d: pd.DataFrame, bins: int = BINS_PER_RUN) -> tuple[np.ndarray, np.ndarray]:
    """A run's (samples, loss) in log-spaced bins of samples, each bin the geometric mean of its
    samples and of its losses (a power law is straight in log-log, so these means stay on it)."""
    s = d["samples"].to_numpy(float)
    loss = d["value_loss"].to_numpy(float)
    if len(s) <= bins:
        return s, loss
    edges = np.geomspace(s.min(), s.max() * (1 + 1e-12), bins + 1)
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    xs, ys = [], []
    for b in np.unique(which):
        m = which == b
        xs.append(float(np.exp(np.log(s[m]).mean())))
        ys.append(float(np.exp(np.log(loss[m]).mean())))
    return np.array(xs), np.array(ys)


def fit_loss_vs_data(curves: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """Per size: the saturating power law of value loss against samples seen, fitted to each
    seed's curve alone (see the module text); the size's exponent is the mean over its seeds and
    its interval Student's t over seeds (n - 1 degrees of freedom). A run's steps are not
    independent draws, so the spread between seeds is what measures the uncertainty; one seed
    gives no interval. (Two or three seeds give wide t intervals: that is the information there
    is; resampling two or three seeds would give intervals far too narrow.)"""
    from scipy.stats import t as student

    from .scaling import _fit_saturating, not_identified

    out: dict[str, Any] = {"model": "L(D) = L_inf + (D_c / D)^beta, Huber loss in log space",
                           "data": "learner samples seen = learner steps x updates per step x batch size",
                           "points": f"each seed's steps with a full replay buffer, in up to {BINS_PER_RUN} log-spaced "
                                     "bins of samples (geometric means)",
                           "interval": "Student t over seeds (each seed's curve fitted alone)",
                           "caveat": "self-play data shift with the agent, while the quantization model's L(D) "
                                     "assumes one fixed distribution of quanta",
                           "by_params": {}}
    for params, g in curves.groupby("params"):
        full = g[(g["buffer_fill"] >= 0.999) & (g["value_loss"] > 0)]
        rec: dict[str, Any] = {"seeds": int(g["run"].nunique()), "steps_used": int(len(full)), "beta": None,
                               "ci_low": None, "ci_high": None}
        fits, short, unfit = [], [], []
        for run, x in full.groupby("run"):
            d, loss = _binned(x.sort_values("step"))
            if len(d) < MIN_DATA_POINTS or len(np.unique(d)) < 3:
                short.append(f"{run} ({len(d)} points)")
                continue
            l_inf, d_c, beta, _ = _fit_saturating(d, loss)
            why = not_identified(l_inf, d_c, beta, d, loss)
            if why:
                unfit.append({"run": run, "not_identified": why, "points": int(len(d))})
                continue
            fits.append({"run": run, "beta": beta, "l_inf": l_inf, "d_c": d_c, "samples_min": float(d.min()),
                         "samples_max": float(d.max()), "points": int(len(d))})
        if short:
            rec["left_out"] = (f"seeds with fewer than {MIN_DATA_POINTS} binned points with a full replay buffer: "
                               + ", ".join(short))
        if unfit:
            rec["not_identified"] = unfit
        if not fits and unfit:
            rec["note"] = f"not identified: {unfit[0]['not_identified']}"
            out["by_params"][str(int(params))] = rec
            continue
        if not fits:
            rec["note"] = (f"not measured: no seed has {MIN_DATA_POINTS} or more learner steps with a full replay buffer"
                           if full.shape[0] or g.shape[0] else "not measured: no learner step recorded")
            out["by_params"][str(int(params))] = rec
            continue
        b = np.array([f["beta"] for f in fits])
        rec.update(beta=float(b.mean()), l_inf=float(np.mean([f["l_inf"] for f in fits])), per_seed=fits,
                   samples_min=min(f["samples_min"] for f in fits), samples_max=max(f["samples_max"] for f in fits),
                   seeds_fitted=len(fits))
        if len(fits) >= 2:
            half = float(student.ppf((1 + level) / 2, len(fits) - 1)) * float(b.std(ddof=1)) / math.sqrt(len(fits))
            rec["ci_low"], rec["ci_high"] = rec["beta"] - half, rec["beta"] + half
            rec["interval"] = f"Student t over {len(fits)} seeds ({len(fits) - 1} degrees of freedom)"
        else:
            rec["interval"] = "none: one seed (a run's steps are not independent draws, so they are not resampled)"
        out["by_params"][str(int(params))] = rec
    return out


def _f(x) -> float | None:
    return None if runs.is_missing(x) else float(x)


def quanta_check(zipf: dict[str, Any], elo_exponent: dict[str, Any] | None = None,
                 loss_vs_params: dict[str, Any] | None = None,
                 loss_vs_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's predictions from each Zipf fit of the last (pooled) curve, beside the measured
    exponents. `zipf`: fits.json of azscale zipf."""
    curve = zipf["curves"][-1]
    rows = []
    for f in curve["fits"]:
        az, lo, hi = _f(f.get("alpha")), _f(f.get("ci_low")), _f(f.get("ci_high"))
        row: dict[str, Any] = {"method": f["method"], "alpha_Z": az, "alpha_Z_ci": [lo, hi], "window": f.get("window"),
                               "alpha_N_loss_predicted": None, "alpha_N_loss_predicted_ci": [None, None],
                               "data_exponent_predicted": None, "data_exponent_predicted_ci": [None, None]}
        if az is None:
            row["status"] = f"no Zipf exponent: {f.get('window') or 'not fitted'}"
        elif az <= 1:
            row["status"] = NOT_APPLICABLE
        else:
            row["status"] = "predicted"
            row["alpha_N_loss_predicted"] = az - 1
            row["data_exponent_predicted"] = (az - 1) / az
            if lo is not None and hi is not None:
                row["alpha_N_loss_predicted_ci"] = [lo - 1, hi - 1]
                row["data_exponent_predicted_ci"] = [(lo - 1) / lo, (hi - 1) / hi]
                if lo <= 1:
                    row["note"] = "the interval of α_Z reaches 1 or below, where the model gives no exponent"
        rows.append(row)
    out: dict[str, Any] = {"zipf_curve": curve["label"], "key_scheme": zipf.get("key_scheme"),
                           "identity": "alpha_N(loss) = alpha_Z - 1 and loss-vs-data exponent alpha / (alpha + 1), "
                                       "alpha = alpha_Z - 1; defined only where alpha_Z > 1",
                           "rows": rows}
    if loss_vs_params is None:
        out["measured_loss_vs_params"] = {"alpha": None, "note": "not measured: pass the runs with --run"}
    elif "error" in loss_vs_params:
        out["measured_loss_vs_params"] = {"alpha": None, "note": f"not measured: {loss_vs_params['error']}"}
    elif (loss_vs_params.get("extra") or {}).get("not_identified"):
        out["measured_loss_vs_params"] = {"alpha": None,
                                          "note": f"not identified: {loss_vs_params['extra']['not_identified']}"}
    else:
        boot = (loss_vs_params.get("extra") or {}).get("bootstrap") or {}
        out["measured_loss_vs_params"] = {"alpha": _f(loss_vs_params.get("alpha")),
                                          "ci": [_f(loss_vs_params.get("ci_low")), _f(loss_vs_params.get("ci_high"))],
                                          "note": loss_vs_params.get("note", ""),
                                          **({"interval": boot["note"]} if boot.get("note") else {})}
    out["measured_loss_vs_data"] = loss_vs_data if loss_vs_data is not None else {
        "by_params": {}, "note": "not measured: pass the runs with --run"}
    out["elo_exponent"] = ({"alpha": _f(elo_exponent.get("alpha")),
                            "ci": [_f(elo_exponent.get("ci_low")), _f(elo_exponent.get("ci_high"))],
                            "note": "playing strength, not loss: reported separately, not what α_Z − 1 predicts"}
                           if elo_exponent else None)
    return out


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(no rows)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


def _n(x, nd=3) -> str:
    return "n/a" if runs.is_missing(x) else f"{x + 0.0:.{nd}f}"


def _ci(ci, nd=3) -> str:
    if not ci or runs.is_missing(ci[0]) or runs.is_missing(ci[1]):
        return "n/a"
    return f"[{_n(ci[0], nd)}, {_n(ci[1], nd)}]"


def quanta_markdown(q: dict[str, Any]) -> str:
    """The quanta section: predictions only where α_Z > 1, measured exponents beside them."""
    if "rows" not in q:                      # scaling.json written before this check
        rows = [{"Zipf fit": m, "α_Z": _n(p.get("alpha_Z")),
                 "α_Z − 1": (_n(p["alpha_Z"] - 1) if not runs.is_missing(p.get("alpha_Z")) and p["alpha_Z"] > 1
                             else NOT_APPLICABLE if not runs.is_missing(p.get("alpha_Z")) else "n/a")}
                for m, p in (q.get("predicted") or {}).items()]
        return ("\nQuantization model (α_Z − 1 is the predicted exponent of the loss against parameters, defined only "
                "for α_Z > 1): this scaling.json predates the measured value-loss exponents; rerun `azscale scaling "
                "--run ...` to set them beside it.\n\n" + _md_table(pd.DataFrame(rows)) + "\n")
    mp = q["measured_loss_vs_params"]
    mp_txt = ((f"{_n(mp['alpha'])} ({mp['interval']})" if mp.get("interval") else
               f"{_n(mp['alpha'])} {_ci(mp.get('ci'))}") if mp.get("alpha") is not None else mp.get("note", "n/a"))
    table = []
    for r in q["rows"]:
        pred = r["status"] if r["status"] != "predicted" else \
            f"{_n(r['alpha_N_loss_predicted'])} {_ci(r['alpha_N_loss_predicted_ci'])}"
        dpred = r["status"] if r["status"] != "predicted" else \
            f"{_n(r['data_exponent_predicted'])} {_ci(r['data_exponent_predicted_ci'])}"
        table.append({"Zipf fit": r["method"], "α_Z [95% CI]": f"{_n(r['alpha_Z'])} {_ci(r['alpha_Z_ci'])}",
                      "predicted α_N(loss) = α_Z − 1": pred, "measured α_N(loss) [95% CI]": mp_txt,
                      "predicted loss-vs-data exponent α/(α+1)": dpred})
    md = ("\nQuantization model, stated as the model states it: α = α_Z − 1 predicts the exponent of the value loss "
          "against parameters (α_N(loss) = α_Z − 1) and against data (α/(α+1)); it gives no exponent where α_Z ≤ 1. "
          f"Zipf curve '{q['zipf_curve']}'.\n\n" + _md_table(pd.DataFrame(table)) + "\n")
    notes = [f"- {r['method']}: {r['note']}." for r in q["rows"] if r.get("note")]
    if notes:
        md += "\n" + "\n".join(notes) + "\n"
    ld = q.get("measured_loss_vs_data") or {}
    by = ld.get("by_params") or {}
    if by:
        rows = [{"params": f"{int(p):,}", "seeds": v["seeds"],
                 "loss-vs-data exponent β [95% CI]": (
                     (f"{_n(v['beta'])} {_ci([v.get('ci_low'), v.get('ci_high')])}" if v.get("ci_low") is not None
                      else f"{_n(v['beta'])} (no interval: {v.get('interval', 'none').removeprefix('none: ')})")
                     + (f"; {len(v['not_identified'])} seed(s) left out, not identified" if v.get("not_identified") else "")
                     if v.get("beta") is not None else v.get("note", "n/a")),
                 "L∞": _n(v.get("l_inf"), 4), "samples": (f"{v['samples_min']:,.0f}–{v['samples_max']:,.0f}"
                                                          if v.get("beta") is not None else "")}
                for p, v in sorted(by.items(), key=lambda kv: int(kv[0]))]
        md += (f"\nMeasured value loss against learner samples seen, per size ({ld.get('model')}; {ld.get('points')}; "
               f"{ld.get('caveat')}):\n\n" + _md_table(pd.DataFrame(rows)) + "\n")
    else:
        md += f"\nLoss against data: {ld.get('note', 'not measured')}.\n"
    ef = q.get("elo_exponent")
    if ef:
        md += f"\nThe Elo exponent ({ef['note']}): α_N(Elo) = {_n(ef['alpha'])} {_ci(ef.get('ci'))}.\n"
    return md
