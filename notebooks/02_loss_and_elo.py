# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Loss by rank and Elo by size
# Rebuilds the two central figures from a sweep's tables: smoothed value loss against state rank
# per model size (train-set target), and Elo against parameters with bootstrap intervals.

# %%
import json
import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

SWEEP = Path(os.environ.get("SWEEP", "sweeps/c4"))
OUT = Path(os.environ.get("NOTEBOOK_OUT", "."))
curves = pd.read_csv(SWEEP / "analysis/loss/curves.csv")
elo = pd.read_csv(SWEEP / "analysis/elo/elo.csv")
meta = json.loads((SWEEP / "analysis/loss/loss.json").read_text())
print("target:", meta["target"], "| frame:", meta["frame"], "| selection:", meta["selection"])

# %%
fig, ax = plt.subplots(figsize=(6, 4))
final = curves[(curves["subset"] == "all")]
for params, g in final.groupby("params"):
    g = g[g["step"] == g["step"].max()]
    ax.loglog(g["rank"], g["loss_geomean"], label=f"{params:,} params")
ax.set_xlabel("state rank")
ax.set_ylabel("value loss")
ax.legend(fontsize=7)
fig.savefig(OUT / "nb_loss.png", dpi=100)

# %%
agents = elo[elo["kind"] == "agent"]
agents = agents.loc[agents.groupby("run")["step"].idxmax()]
fig, ax = plt.subplots(figsize=(6, 4))
ax.errorbar(agents["params"], agents["elo"], yerr=[agents["elo"] - agents["elo_ci_low"],
                                                  agents["elo_ci_high"] - agents["elo"]], fmt="o", capsize=3)
ax.set_xscale("log")
ax.set_xlabel("parameters")
ax.set_ylabel("Elo (random = 0)")
fig.savefig(OUT / "nb_elo.png", dpi=100)
print(agents[["run", "params", "elo", "elo_ci_low", "elo_ci_high"]].to_string(index=False))
