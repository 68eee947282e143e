# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Two sweeps side by side
# What the report cannot show: two sweeps on the same axes, e.g. one preset against another, a
# sweep before and after it grew, or two games. For every size: self-play speed and the final
# learner loss, Elo with its interval, and each run's Zipf exponent, with the differences in a
# table.
#
# **Parameters**: `SWEEP` and `SWEEP_B` are sweep directories (`azscale sweep ... --out DIR`)
# whose analysis has run. Set them in the next cell, or through the environment variables
# `AZSCALE_SWEEP` and `AZSCALE_SWEEP_B` before starting Jupyter. Without `SWEEP_B` the sweep is
# compared with itself.

# %% tags=["parameters"]
import os

SWEEP = os.environ.get("AZSCALE_SWEEP", "sweeps/ttt")
SWEEP_B = os.environ.get("AZSCALE_SWEEP_B", SWEEP)

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import azscale

sweeps = {"A": SWEEP, "B": SWEEP_B}
runs = {k: azscale.load_sweep(p) for k, p in sweeps.items()}
for k, r in runs.items():
    s = r.attrs["settings"]
    print(f"{k}: {sweeps[k]} | {s['game']}, preset {s['preset']}, overrides {s['overrides'] or 'none'} | "
          f"{len(r)} runs, {r['params'].nunique()} sizes | analysis done: {', '.join(r.attrs['analysis_done'])}")

# %% [markdown]
# ## Per size: games played, self-play speed and the learner's final value loss
# Means over seeds at each size; the final loss is the mean over the last 10% of steps.

# %%
def per_size(key):
    m = azscale.load_metrics(sweeps[key])
    tail = m[m["step"] > m.groupby("run")["step"].transform("max") * 0.9]
    by_run = tail.groupby(["run", "params"]).agg(value_loss=("loss_value", "mean"),
                                                 states_per_s=("states_per_s", "mean")).reset_index()
    r = runs[key][["run", "games", "wall_seconds"]]
    return by_run.merge(r, on="run").groupby("params").mean(numeric_only=True)


sizes = pd.concat({k: per_size(k) for k in sweeps}, axis=1)
sizes

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for k, marker in (("A", "o-"), ("B", "s--")):
    d = sizes[k]
    axes[0].plot(d.index, d["value_loss"], marker, label=f"{k}: {sweeps[k]}")
    axes[1].plot(d.index, d["states_per_s"], marker, label=k)
for ax, what in zip(axes, ("final learner value loss", "self-play states per second")):
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(what)
    ax.grid(True, alpha=0.3)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The replay buffer over training (the replay intervention's metrics)
# Per step, means over seeds: the share of distinct states among those the buffer holds, the most
# copied state's share, and the share of late examples among those drawn. Two sweeps that differ
# by `--set replay_cap=...` / `replay_beta=...` / `replay_from_turn=...` show here whether the
# setting did what it says; `azscale compare A B --out DIR` plays their agents head to head.

# %%
REPLAY = ["replay_distinct_share", "replay_top_share", "learned_late_share"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for k, ls in (("A", "-"), ("B", "--")):
    m = azscale.load_metrics(sweeps[k])
    have = [c for c in REPLAY if c in m.columns and m[c].notna().any()]
    if not have:
        print(f"{k}: no replay metrics recorded (trained before azscale kept them)")
        continue
    for ax, c in zip(axes, REPLAY):
        if c not in have:
            ax.set_title(f"{c}: not defined for {k}", fontsize=8)
            continue
        by = m.groupby(["params", "step"])[c].mean().reset_index()
        for p, d in by.groupby("params"):
            ax.plot(d["step"], d[c], ls, label=f"{k} {p:,}")
for ax, c in zip(axes, REPLAY):
    ax.set_xlabel("learner step")
    ax.set_ylabel(c.replace("_", " "))
    ax.grid(True, alpha=0.3)
axes[0].legend(fontsize=6)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Elo by size, both sweeps
# Each sweep's ratings are anchored at its own random player (Elo 0), so the two scales are
# comparable through that anchor only.

# %%
def final_elo(key):
    e = azscale.load_elo(sweeps[key])
    agents = e[e["kind"] == "agent"]
    return agents.loc[agents.groupby("run")["step"].idxmax()]


fig, ax = plt.subplots(figsize=(6, 4))
for k, marker in (("A", "o"), ("B", "s")):
    e = final_elo(k)
    ax.errorbar(e["params"] * (1.04 if k == "B" else 1.0), e["elo"],
                yerr=[e["elo"] - e["elo_ci_low"], e["elo_ci_high"] - e["elo"]], fmt=marker, capsize=3,
                label=f"{k}: {sweeps[k]}")
ax.axhline(0, color="0.45", ls="--", lw=1)
ax.annotate("random (reference, Elo 0)", (0.01, 0), xycoords=("axes fraction", "data"), xytext=(0, 3),
            textcoords="offset points", fontsize=7, color="0.45")
ax.set_xscale("log")
ax.set_xlabel("parameters (B shifted right by 4% to be visible)")
ax.set_ylabel("Elo")
ax.legend(fontsize=7)
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# ## Each run's Zipf exponent against its size
# From each sweep's `analysis/zipf/fits.json` (least squares in the game's window, and the
# maximum-likelihood fit), with the jackknife intervals.

# %%
def zipf_by_run(key):
    fits = json.loads((Path(sweeps[key]) / "analysis" / "zipf" / "fits.json").read_text())
    params = runs[key].set_index("run")["params"]
    rows = []
    for c in fits["curves"]:
        if c["label"] not in params:
            continue
        for f in c["fits"]:
            rows.append({"sweep": key, "run": c["label"], "params": params[c["label"]], "method": f["method"],
                         "alpha": f["alpha"], "ci_low": f["ci_low"], "ci_high": f["ci_high"]})
    return pd.DataFrame(rows)


zipf = pd.concat([zipf_by_run(k) for k in sweeps], ignore_index=True).astype(
    {"alpha": float, "ci_low": float, "ci_high": float})
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, method in zip(axes, ("ls", "mle")):
    for k, marker in (("A", "o"), ("B", "s")):
        d = zipf[(zipf["sweep"] == k) & (zipf["method"] == method)].dropna(subset=["alpha"])
        ax.errorbar(d["params"] * (1.04 if k == "B" else 1.0), d["alpha"],
                    yerr=[(d["alpha"] - d["ci_low"]).fillna(0).clip(lower=0),
                          (d["ci_high"] - d["alpha"]).fillna(0).clip(lower=0)],
                    fmt=marker, capsize=2, label=k)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"Zipf α ({method.upper()})")
    ax.grid(True, alpha=0.3)
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The differences, per size (B − A)

# %%
summary = pd.DataFrame({
    "Elo A": final_elo("A").groupby("params")["elo"].mean(),
    "Elo B": final_elo("B").groupby("params")["elo"].mean(),
    "value loss A": sizes["A"]["value_loss"], "value loss B": sizes["B"]["value_loss"],
    "MLE α A": zipf[(zipf.sweep == "A") & (zipf.method == "mle")].groupby("params")["alpha"].mean(),
    "MLE α B": zipf[(zipf.sweep == "B") & (zipf.method == "mle")].groupby("params")["alpha"].mean(),
})
summary["Δ Elo"] = summary["Elo B"] - summary["Elo A"]
summary["Δ value loss"] = summary["value loss B"] - summary["value loss A"]
summary["Δ MLE α"] = summary["MLE α B"] - summary["MLE α A"]
summary.round(3)
